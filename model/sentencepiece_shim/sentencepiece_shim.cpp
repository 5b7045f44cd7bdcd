// A C-callable wrapper around libsentencepiece, built as its own shared library and loaded
// with dlopen(RTLD_LOCAL | RTLD_DEEPBIND) by model/sentencepiece_tokenizer.cpp.
//
// Why: Debian's libsentencepiece.so.0 carries (and exports) its own protobuf-lite 3.14, while
// LibTorch needs libprotobuf.so.32 (3.21). Linked into one executable, whichever loads first
// captures the other's protobuf symbols: the process crashes in libprotobuf's static
// initialisers or fails sentencepiece's version check. Loaded locally with DEEPBIND, each
// library binds to its own protobuf. Only ints, pointers and a byte sink cross the boundary.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

namespace {
using sentencepiece::SentencePieceProcessor;
using Sink = void (*)(void* context, const char* data, size_t size);
SentencePieceProcessor* spp(void* h) { return static_cast<SentencePieceProcessor*>(h); }
}  // namespace

extern "C" {

// Returns a handle, or null with the error message sent to `sink`.
void* lathe_spm_load(const char* path, Sink sink, void* context) {
  auto* p = new SentencePieceProcessor();
  const auto status = p->Load(path);
  if (!status.ok()) {
    const std::string message = status.ToString();
    sink(context, message.data(), message.size());
    delete p;
    return nullptr;
  }
  return p;
}

void lathe_spm_free(void* h) { delete spp(h); }
int lathe_spm_size(void* h) { return spp(h)->GetPieceSize(); }

void lathe_spm_encode(void* h, const char* text, size_t size, std::vector<int>* ids) {
  ids->clear();
  spp(h)->Encode(std::string_view(text, size), ids).IgnoreError();
}

void lathe_spm_decode(void* h, const int* ids, size_t n, Sink sink, void* context) {
  std::string text;
  spp(h)->Decode(std::vector<int>(ids, ids + n), &text).IgnoreError();
  sink(context, text.data(), text.size());
}

void lathe_spm_id_to_piece(void* h, int id, Sink sink, void* context) {
  const std::string& piece = spp(h)->IdToPiece(id);
  sink(context, piece.data(), piece.size());
}

int lathe_spm_piece_to_id(void* h, const char* piece, size_t size) {
  return spp(h)->PieceToId(std::string_view(piece, size));
}

// Bit flags: 1 control, 2 unknown, 4 byte, 8 unused.
int lathe_spm_piece_type(void* h, int id) {
  const auto* p = spp(h);
  return (p->IsControl(id) ? 1 : 0) | (p->IsUnknown(id) ? 2 : 0) | (p->IsByte(id) ? 4 : 0) |
         (p->IsUnused(id) ? 8 : 0);
}

// 0 unk, 1 bos, 2 eos, 3 pad; -1 when the model has none.
int lathe_spm_reserved_id(void* h, int which) {
  const auto* p = spp(h);
  switch (which) {
    case 0: return p->unk_id();
    case 1: return p->bos_id();
    case 2: return p->eos_id();
    default: return p->pad_id();
  }
}

// Trains a model with SentencePieceTrainer's flags (keys[i] = values[i], e.g. "input" =
// "corpus.txt", "model_prefix" = "out/tokenizer"). Returns 1, or 0 with the error sent to `sink`.
int lathe_spm_train(const char* const* keys, const char* const* values, size_t n, Sink sink, void* context) {
  std::unordered_map<std::string, std::string> flags;
  for (size_t i = 0; i < n; ++i) flags[keys[i]] = values[i];
  const auto status = sentencepiece::SentencePieceTrainer::Train(flags);
  if (status.ok()) return 1;
  const std::string message = status.ToString();
  sink(context, message.data(), message.size());
  return 0;
}

}  // extern "C"
