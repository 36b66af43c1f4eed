#pragma once
// llm.c tokenizer files (gpt2_tokenizer.bin, written by its train_gpt2.py): a 1024-byte header of 256
// little-endian uint32 (magic 20240328, version 1 or 2, vocab_size, and in version 2 the end-of-text token),
// then per token a uint8 length (at least 1) and that many bytes. They decode only: llm.c keeps no merges.
#include <string>
#include <vector>

namespace est {

// Every token's bytes, indexed by token id. Throws InputError naming the file and the field.
std::vector<std::string> read_llmc_tokenizer(const std::string& path);

}  // namespace est
