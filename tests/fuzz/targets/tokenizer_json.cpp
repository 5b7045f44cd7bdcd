// Fuzz target: tokenizer.json alone in a model folder (load_tokenizer picks byte-level BPE),
// then the loaded tokenizer at work: the input itself and a few fixed texts encoded with and
// without special tokens, decoded, streamed, and every id's spelling and bytes read.
#include "model/tokenizer.h"
#include "tests/fuzz/fuzz_target.h"

namespace lathe::fuzz {

void fuzz_tokenizer_json(const std::string& input) {
  const std::string dir = fresh_scratch_dir("tokenizer_json");
  write_scratch_file("tokenizer_json/tokenizer.json", input);
  const std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(dir);

  const int32_t vocab = tokenizer->vocab_size();
  for (int32_t id = 0; id < vocab && id < 512; ++id) {
    tokenizer->id_to_piece(id);
    tokenizer->token_bytes(id);
    tokenizer->is_special(id);
  }
  for (const std::string& text : {input.substr(0, 256), std::string("Hello 世界 <|im_end|>\n\tSELECT 1;")}) {
    for (bool special : {false, true}) {
      EncodeOptions options;
      options.add_bos = options.add_eos = special;
      options.parse_special = special;
      const std::vector<int32_t> ids = tokenizer->encode(text, options);
      tokenizer->decode(ids, /*skip_special=*/special);
      DecodeStream stream(*tokenizer);
      for (int32_t id : ids) stream.push(id);
      stream.finish();
    }
  }
  tokenizer->piece_to_id(input.substr(0, 32));
}

}  // namespace lathe::fuzz
