// The llm.c token-shard reader (data/token_shard.cpp) on arbitrary bytes as a shard file, and the data loader
// (data/dataloader.cpp) on a shard it accepts: the first window's token check, then batches across an epoch.
#include <cstdint>
#include <vector>

#include "data/dataloader.hpp"
#include "data/token_shard.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = est::fuzz::scratch_file("shard.bin", data, size);
  est::fuzz::attempt([&] {
    const est::ShardInfo shard = est::read_shard_header(path);
    uint16_t token = 0;
    est::read_shard_tokens(shard, shard.num_tokens - 1, 1, &token);
    // Byte tokens (the quickstart's vocabulary), 2 sequences of 4.
    est::DataLoader loader(path, 2, 4, 256, "data.train", {true, 1337});
    std::vector<int> inputs(8), targets(8);
    for (int i = 0; i < 3; ++i) loader.next_batch(inputs.data(), targets.data());
  });
  return 0;
}
