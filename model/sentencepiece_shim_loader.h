// Where libsentencepiece is reached from: model/sentencepiece_shim, a shared library loaded
// once per process with dlopen(RTLD_LOCAL | RTLD_DEEPBIND) because the protobuf bundled in
// libsentencepiece clashes with LibTorch's (see sentencepiece_shim/sentencepiece_shim.cpp).
// The tokenizer (sentencepiece_tokenizer.cpp) and the trainer (sentencepiece_trainer.cpp)
// both look their C functions up here.
#pragma once

namespace lathe {

// The shim function `name`. The library's path is baked in at build time;
// LATHE_SENTENCEPIECE_SHIM overrides it (installs). Throws lathe::Error naming the library
// when it cannot be loaded or lacks the symbol.
void* sentencepiece_shim_symbol(const char* name);

}  // namespace lathe
