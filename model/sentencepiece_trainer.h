// Training a SentencePiece tokenizer (tokenizer.model) with libsentencepiece's own trainer,
// reached through the dlopen'ed shim (sentencepiece_shim_loader.h), for base models made
// from nothing. The result is an ordinary Llama-style model folder tokenizer that
// SentencePieceTokenizer loads.
//
// Settings, and why: byte fallback (every UTF-8 byte has a piece, so no text is ever <unk>,
// as Llama's tokenizer); identity normalisation with extra whitespace kept and whitespace-only
// pieces allowed (SQL, DDL indentation and Chinese round-trip byte for byte; SentencePiece's
// default NFKC would rewrite full-width punctuation and collapse spaces); digits split (ids
// and prices are copied digit by digit); ids 0 <unk>, 1 <s>, 2 </s>, 3 <pad>. Training reads
// the corpus one line at a time, so newlines never join a piece and encode as the byte
// piece <0x0A>.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lathe {

struct SentencePieceTrainOptions {
  int vocab_size = 2000;
  std::string model_type = "unigram";           // unigram | bpe
  double character_coverage = 0.9995;           // the rest of the characters fall back to bytes
  std::vector<std::string> user_defined_symbols;  // always one piece (chat markers, XML tags)
  bool split_by_whitespace = true;              // false: pieces may span words ("▁TEXT▁NOT▁NULL")
  int max_piece_length = 16;                    // characters per piece at most
  int64_t max_sentences = 0;                    // lines sampled for training (0 = all)
  int threads = 1;
};

// Trains out_dir/tokenizer.model from the lines of corpus_path and writes
// out_dir/tokenizer_config.json (bos <s>, eos </s>, pad <pad>, add_bos_token true). out_dir
// must exist. Throws lathe::Error with sentencepiece's message on failure (e.g. a vocabulary
// too large for the corpus).
void train_sentencepiece(const std::string& corpus_path, const std::string& out_dir,
                         const SentencePieceTrainOptions& options);

}  // namespace lathe
