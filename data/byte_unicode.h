// GPT-2 byte-level alphabet: every byte maps to one printable Unicode character so that BPE
// vocabularies can be stored as text; and small UTF-8 helpers.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace linspec {

// UTF-8 text of the character that stands for `byte` in byte-level vocabularies.
const std::string& byte_to_unicode(uint8_t byte);

// The byte that a byte-level character stands for, or -1 when `codepoint` is not in the alphabet.
int unicode_to_byte(uint32_t codepoint);

// Appends the UTF-8 encoding of `codepoint` to `out`.
void append_utf8(uint32_t codepoint, std::string& out);

// Decodes one UTF-8 character at `pos` (advancing it). Invalid bytes decode as themselves with
// `valid` false, advancing by one.
uint32_t next_utf8(std::string_view text, size_t& pos, bool* valid = nullptr);

// Bytes that a byte-level token string stands for; characters outside the alphabet are kept as UTF-8.
std::string byte_level_to_bytes(std::string_view token);

}  // namespace linspec
