// Server-sent events as OpenAI streams them: one `data: <json>\n\n` event per chunk, `data: [DONE]\n\n` at the end
// (no event names, no ids). A JSON body never contains a raw newline (dump_json escapes them), so one data line
// per event is enough.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace linspec::serve {

std::string sse_event(const nlohmann::json& chunk);
std::string sse_done();
// An error after the stream started (the status line is gone): OpenAI-style error object as a data event.
std::string sse_error(const nlohmann::json& error_body);

}  // namespace linspec::serve
