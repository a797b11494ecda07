// Chat messages -> prompt text with the checkpoint's own chat template (TokenizerData::chat_template, from GGUF
// tokenizer.chat_template or tokenizer_config.json). linspec has no Jinja engine: it recognises the template
// families it can render exactly and refuses the rest when the server starts, rather than guess a format the model
// was not trained on. Recognised (whitespace inside tags, quote style and message.role vs message['role'] ignored):
//   chatml                 <|im_start|>{role}\n{content}<|im_end|>\n per message, <|im_start|>assistant\n to generate
//   chatml + default system  the same, with a fixed system message first when the conversation has none
//                            (SmolLM2-Instruct: "You are a helpful AI assistant named SmolLM, ...")
#pragma once
#include <string>
#include <vector>

namespace linspec::serve {

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

class ChatTemplate {
 public:
  // InputError naming `where` when `source` is empty or not a family listed above.
  static ChatTemplate parse(const std::string& source, const std::string& where);

  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true) const;
  // "chatml" or "chatml+default-system".
  std::string name() const { return default_system_.empty() ? "chatml" : "chatml+default-system"; }
  const std::string& default_system() const { return default_system_; }

 private:
  std::string default_system_;
};

// The template with whitespace outside string literals removed inside {% %} / {{ }} tags, string literals in single
// quotes with \n escapes resolved, and attribute access written as subscripts: the form parse() compares.
// InputError naming `where` on text outside tags or an unterminated tag or literal.
std::string normalize_template(const std::string& source, const std::string& where);

}  // namespace linspec::serve
