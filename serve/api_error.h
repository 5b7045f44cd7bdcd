// Errors a request gets back, in OpenAI's envelope {"error": {"message", "type", "param",
// "code"}} with the HTTP status equal to code, as vLLM answers them. Request handling throws
// ApiError; the HTTP layer turns it (and anything unexpected, as a 500) into the response.
#pragma once
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace lathe::serve {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string param = "")
      : std::runtime_error(message), status(status), param(std::move(param)) {}
  int status;
  std::string param;  // the request field at fault, "" = none
};

// 400 BadRequestError, 404 NotFoundError, 413 RequestTooLargeError, 503
// ServiceUnavailableError, 500 InternalServerError.
std::string error_type(int status);

// {"error": {"message", "type", "param" (null when empty), "code": status}}
nlohmann::json error_body(int status, const std::string& message, const std::string& param = "");

}  // namespace lathe::serve
