#include "data/byte_unicode.h"

#include <vector>

namespace linspec {
namespace {

// GPT-2's table: printable Latin-1 bytes stand for themselves; the others (controls, space, DEL,
// NBSP, soft hyphen...) are moved, in byte order, to U+0100 upward.
struct ByteAlphabet {
  std::array<uint32_t, 256> codepoint{};
  std::array<std::string, 256> utf8;
  std::vector<int16_t> byte_of;  // indexed by codepoint, -1 if none

  ByteAlphabet() {
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    uint32_t next_moved = 256;
    byte_of.assign(512, -1);
    for (int b = 0; b < 256; ++b) {
      codepoint[b] = printable(b) ? uint32_t(b) : next_moved++;
      byte_of[codepoint[b]] = int16_t(b);
      append_utf8(codepoint[b], utf8[b]);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet table;
  return table;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t byte) { return alphabet().utf8[byte]; }

int unicode_to_byte(uint32_t codepoint) {
  const auto& t = alphabet();
  return codepoint < t.byte_of.size() ? t.byte_of[codepoint] : -1;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

uint32_t next_utf8(std::string_view s, size_t& pos, bool* valid) {
  const auto byte = [&](size_t i) { return uint8_t(s[i]); };
  const uint8_t b0 = byte(pos);
  int len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
  bool ok = len > 0 && pos + len <= s.size();
  uint32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (int i = 1; ok && i < len; ++i) {
    ok = (byte(pos + i) & 0xC0) == 0x80;
    cp = (cp << 6) | (byte(pos + i) & 0x3F);
  }
  if (valid) *valid = ok;
  if (!ok) {
    ++pos;
    return b0;
  }
  pos += len;
  return cp;
}

std::string byte_level_to_bytes(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (size_t pos = 0; pos < token.size();) {
    const size_t start = pos;
    bool valid = false;
    const uint32_t cp = next_utf8(token, pos, &valid);
    const int b = valid ? unicode_to_byte(cp) : -1;
    if (b >= 0)
      out += char(b);
    else
      out.append(token.substr(start, pos - start));
  }
  return out;
}

}  // namespace linspec
