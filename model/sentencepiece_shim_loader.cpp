// Loading the SentencePiece shim: see sentencepiece_shim_loader.h.
#include "model/sentencepiece_shim_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <string>

#include "core/error.h"

namespace lathe {
namespace {

struct Shim {
  std::string path;
  void* library = nullptr;
};

const Shim& shim() {
  static const Shim loaded = [] {
    Shim s;
    const char* env = std::getenv("LATHE_SENTENCEPIECE_SHIM");
    s.path = env && *env ? env : LATHE_SENTENCEPIECE_SHIM;
    s.library = dlopen(s.path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!s.library)
      fail(s.path + ": cannot load the SentencePiece shim (" + dlerror() +
           "); rebuild lathe or point LATHE_SENTENCEPIECE_SHIM at liblathe_sentencepiece_shim.so");
    return s;
  }();
  return loaded;
}

}  // namespace

void* sentencepiece_shim_symbol(const char* name) {
  const Shim& s = shim();
  void* f = dlsym(s.library, name);
  if (!f) fail(s.path + ": missing symbol " + name + " (a shim from another lathe build?)");
  return f;
}

}  // namespace lathe
