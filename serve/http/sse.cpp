#include "serve/http/sse.h"

#include "serve/http/openai_api.h"

namespace linspec::serve {

std::string sse_event(const nlohmann::json& chunk) { return "data: " + dump_json(chunk) + "\n\n"; }
std::string sse_done() { return "data: [DONE]\n\n"; }
std::string sse_error(const nlohmann::json& error_body) { return sse_event(error_body); }

}  // namespace linspec::serve
