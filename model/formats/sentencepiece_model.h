// Reads the parts of a SentencePiece ModelProto (tokenizer.model) that TokenizerData carries: pieces, scores,
// piece types and the special ids of the trainer spec. A minimal protobuf wire-format reader, so model/ does not
// need libsentencepiece; data/ loads the same bytes with libsentencepiece for encoding.
#pragma once
#include <string>

#include "model/tokenizer_data.h"

namespace linspec {

// InputError naming `path` when the bytes are not a well-formed ModelProto with at least one piece.
TokenizerData parse_sentencepiece_model(const std::string& bytes, const std::string& path);

}  // namespace linspec
