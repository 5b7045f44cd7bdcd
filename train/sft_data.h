// SFT data: JSONL rows -> token ids with a per-token "is a target" mask -> padded batches.
//
// Rows are either {"messages": [{"role", "content"}, ...]} (chat template applied) or
// {"prompt": ..., "completion": ...}. A prompt/completion pair of strings is plain text
// (prompt + completion + EOS, as TRL does for non-conversational data); if both are message
// lists they are rendered as one conversation. Loss is on the assistant content and the
// format's end token (ChatTemplate::render_segments' trainable pieces); train_on_prompt makes
// every token but the first a target. The end-of-turn/EOS token is always a target.
// Tokenisation: the whole rendered text is encoded once and each token is mapped back to the
// bytes it covers; a token overlapping a trainable piece is a target (HF's
// return_assistant_tokens_mask does the same). Where the bytes cannot be aligned, each piece
// is encoded on its own.
// Departures from TRL: packing concatenates rows without cross-document attention masking
// (TRL's older ConstantLengthDataset behaviour); rows longer than max_seq_len are truncated
// from the right and counted, never dropped.
//
// Legend: B batch, T padded length.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/chat_template.h"
#include "model/tokenizer.h"

namespace lathe {

struct SftRow {
  std::vector<int32_t> ids;
  std::vector<uint8_t> target;  // target[i] = 1: ids[i] is predicted and scored (from position i - 1)
  std::string source;           // FILE:LINE
};

struct SftDataOptions {
  int64_t max_seq_len = 512;
  bool train_on_prompt = false;
  bool add_bos = false;  // the tokenizer's add_bos_token(): BOS unless the rendered text starts with it
};

struct SftDataset {
  std::vector<SftRow> rows;
  int64_t truncated = 0;       // rows cut to max_seq_len
  int64_t target_tokens = 0;   // scored tokens over all rows
};

// Text pieces of one parsed JSONL row; `where` (FILE:LINE) is named in errors.
std::vector<ChatSegment> sft_row_segments(const std::string& json_line, const ChatTemplate& chat,
                                          const std::string& eos_text, const std::string& where);

// Token ids and targets for the pieces (truncation not applied).
SftRow tokenize_segments(const std::vector<ChatSegment>& segments, const Tokenizer& tokenizer,
                         const SftDataOptions& options);

// Reads every row of a JSONL file; blank lines are skipped; any bad row is an error naming
// FILE:LINE. A row without a single target token is an error too.
SftDataset load_sft_dataset(const std::string& path, const Tokenizer& tokenizer, const ChatTemplate& chat,
                            const SftDataOptions& options);

// All rendered texts of a file, concatenated (a corpus to train a tokenizer from scratch).
std::string sft_corpus_text(const std::string& path, const ChatTemplate& chat, const std::string& eos_text);

// Greedy packing in row order: rows are concatenated into sequences of at most max_seq_len.
std::vector<SftRow> pack_rows(const std::vector<SftRow>& rows, int64_t max_seq_len);

// The batches of one epoch, as row indices. Rows are shuffled (seed, epoch) and taken in
// windows of 16 batches; rows that share their opening 64 tokens with other rows (a schema's
// system prompt: a batch then shares that prefix) are batched only with each other, a group's
// rows that do not fill a batch waiting for the next window (only the epoch's remainders may
// mix groups); inside a batch rows are sorted by length (little padding); the batches are
// shuffled again. shuffle = false keeps file order.
std::vector<std::vector<int64_t>> plan_epoch(const std::vector<SftRow>& rows, int64_t batch_size, uint64_t seed,
                                             int64_t epoch, bool shuffle);

struct SftBatch {
  torch::Tensor input_ids;       // [B, T] int64, right-padded
  torch::Tensor attention_mask;  // [B, T] int64, 1 = token
  torch::Tensor labels;          // [B, T] int64: labels[b, t] = ids[b, t + 1] if a target, else -100
  int64_t target_tokens = 0;
  int64_t tokens = 0;            // real (unpadded) tokens
};

// The row as text with its target tokens marked: ANSI bold green on a terminal, [[...]]
// otherwise; followed by a count of tokens and targets.
std::string format_sft_row(const SftRow& row, const Tokenizer& tokenizer, bool ansi);

SftBatch collate(const std::vector<SftRow>& rows, const std::vector<int64_t>& indices, int32_t pad_id);

}  // namespace lathe
