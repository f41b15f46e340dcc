#include "tensor/device.h"

#include <cctype>

#include "tensor/error.h"

namespace ember {

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5) {
    std::string num = s.substr(5);
    bool digits = !num.empty() && num.size() < 4;
    for (char c : num) digits = digits && std::isdigit(static_cast<unsigned char>(c));
    if (digits) return cuda(std::stoi(num));
  }
  throw make_error("Device: '", s, "' is not a device (expected cpu, cuda or cuda:N)");
}

}  // namespace ember
