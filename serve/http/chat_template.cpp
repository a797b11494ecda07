#include "serve/http/chat_template.h"

#include <cctype>

#include "core/error.h"

namespace linspec::serve {

namespace {
const char* kChatml =
    "{{'<|im_start|>'+message['role']+'\n'+message['content']+'<|im_end|>'+'\n'}}{%endfor%}"
    "{%ifadd_generation_prompt%}{{'<|im_start|>assistant\n'}}{%endif%}";
const char* kLoop = "{%formessageinmessages%}";
const char* kSystemOpen = "{%ifloop.firstandmessages[0]['role']!='system'%}{{'<|im_start|>system\n";
const char* kSystemClose = "<|im_end|>\n'}}{%endif%}";

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}
}  // namespace

std::string normalize_template(const std::string& src, const std::string& where) {
  std::string out;
  size_t i = 0;
  bool prev_dash = false, prev_block = false;  // how the previous tag ended: -%} / -}}, and whether it was {% %}
  while (i < src.size()) {
    if (src.compare(i, 2, "{{") != 0 && src.compare(i, 2, "{%") != 0) {
      // Text outside tags, which Jinja prints. The families linspec renders have none, so only whitespace that
      // HF's environment drops is allowed: next to a {%- / -%} marker, the newline after a block tag
      // (trim_blocks) and the indentation before one (lstrip_blocks).
      const size_t from = i;
      while (i < src.size() && src.compare(i, 2, "{{") != 0 && src.compare(i, 2, "{%") != 0) ++i;
      std::string run = src.substr(from, i - from);
      const bool next_dash = i + 2 < src.size() && src[i + 2] == '-';
      const bool next_block = i < src.size() && src[i + 1] == '%';
      if (!prev_dash && !next_dash) {
        if (prev_block && run.starts_with('\n')) run.erase(0, 1);
        if (next_block) run.erase(run.find_last_not_of(" \t") + 1);
        if (!run.empty())
          throw_input_error(where, ": chat template prints text outside {{ }} / {% %} tags at offset ", from,
                            ", which linspec cannot render");
      }
      continue;
    }
    const std::string close = src[i + 1] == '{' ? "}}" : "%}";
    prev_block = close == "%}";
    prev_dash = false;
    out += src.substr(i, 2);
    i += 2;
    if (i < src.size() && src[i] == '-') ++i;  // whitespace control (handled with the text around the tag)
    bool closed = false;
    while (i < src.size()) {
      const char c = src[i];
      if (c == '\'' || c == '"') {
        std::string lit;
        ++i;
        while (i < src.size() && src[i] != c) {
          if (src[i] == '\\' && i + 1 < src.size()) {
            const char e = src[i + 1];
            lit += e == 'n' ? '\n' : e == 't' ? '\t' : e;
            i += 2;
          } else {
            lit += src[i++];
          }
        }
        if (i >= src.size()) throw_input_error(where, ": chat template has an unterminated string literal");
        ++i;
        if (lit.find('\'') != std::string::npos)
          throw_input_error(where, ": chat template literal with a quote, which linspec cannot render");
        out += "'" + lit + "'";
      } else if (c == '-' && src.compare(i + 1, 2, close) == 0) {
        prev_dash = true;
        ++i;
      } else if (src.compare(i, 2, close) == 0) {
        out += close;
        i += 2;
        closed = true;
        break;
      } else {
        if (!std::isspace(static_cast<unsigned char>(c))) out += c;
        ++i;
      }
    }
    if (!closed) throw_input_error(where, ": chat template has an unterminated tag");
  }
  replace_all(out, "message.role", "message['role']");
  replace_all(out, "message.content", "message['content']");
  replace_all(out, "messages[0].role", "messages[0]['role']");
  return out;
}

ChatTemplate ChatTemplate::parse(const std::string& source, const std::string& where) {
  if (source.empty())
    throw_input_error(where,
                      ": no chat template (the checkpoint's tokenizer carries none; convert the model again "
                      "from a GGUF / HF directory that has one, or pass --chat-template FILE)");
  const std::string n = normalize_template(source, where);
  ChatTemplate t;
  const std::string loop = kLoop, chatml = kChatml, open = kSystemOpen, close = kSystemClose;
  if (n == loop + chatml) return t;
  if (n.starts_with(loop + open) && n.ends_with(close + chatml)) {
    const size_t from = loop.size() + open.size(), to = n.size() - close.size() - chatml.size();
    if (to > from && n.substr(from, to - from).find('\'') == std::string::npos) {
      t.default_system_ = n.substr(from, to - from);
      return t;
    }
  }
  throw_input_error(where,
                    ": chat template is not one linspec can render (it renders ChatML, with or without a "
                    "default system message; pass --chat-template FILE with such a template)");
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0 && !default_system_.empty() && messages[0].role != "system")
      out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
    out += "<|im_start|>" + messages[i].role + "\n" + messages[i].content + "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace linspec::serve
