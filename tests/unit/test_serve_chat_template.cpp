// Chat templates: SmolLM2-Instruct's own (as its GGUF carries it) renders as HF's apply_chat_template does; plain
// ChatML too; templates linspec cannot render are refused with InputError (the server exits 2 at startup).
#include <gtest/gtest.h>

#include "core/error.h"
#include "serve/http/chat_template.h"

namespace linspec::serve {
namespace {

// tokenizer.chat_template of SmolLM2-135M-Instruct (GGUF and tokenizer_config.json).
const std::string kSmolLM2 =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

TEST(ChatTemplate, SmolLM2RendersLikeApplyChatTemplate) {
  const ChatTemplate t = ChatTemplate::parse(kSmolLM2, "smollm2");
  EXPECT_EQ(t.name(), "chatml+default-system");
  // What transformers' apply_chat_template(messages, add_generation_prompt=True, tokenize=False) returns.
  EXPECT_EQ(t.render({{"user", "Hi!"}}),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.render({{"system", "Be terse."}, {"user", "a"}, {"assistant", "b"}, {"user", "c"}}, false),
            "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb"
            "<|im_end|>\n<|im_start|>user\nc<|im_end|>\n");
}

TEST(ChatTemplate, PlainChatmlAndSpellingVariants) {
  // Double quotes, \n escapes, {%- -%} whitespace control, message.role attribute access, newlines between tags.
  const std::string t =
      "{%- for message in messages -%}\n  {{- \"<|im_start|>\" + message.role + \"\\n\" + message.content + "
      "\"<|im_end|>\" + \"\\n\" -}}\n{%- endfor -%}\n{%- if add_generation_prompt -%}{{- \"<|im_start|>assistant\\n\" "
      "-}}{%- endif -%}";
  const ChatTemplate c = ChatTemplate::parse(t, "chatml");
  EXPECT_EQ(c.name(), "chatml");
  EXPECT_EQ(c.render({{"user", "x"}}), "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, UnrenderableTemplatesAreRefused) {
  // Llama-3's header format, a template with text outside tags, an empty template, an unterminated tag.
  const std::string llama3 =
      "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + "
      "message['content'] | trim + '<|eot_id|>' }}{% endfor %}";
  for (const std::string& bad :
       {llama3, std::string("Hello {{ messages }}"), std::string(""), std::string("{% for message in messages")}) {
    try {
      ChatTemplate::parse(bad, "ckpt.h5");
      FAIL() << "accepted: " << bad;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("ckpt.h5"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace linspec::serve
