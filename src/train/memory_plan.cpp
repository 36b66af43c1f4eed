#include "train/memory_plan.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <numeric>
#include <utility>

#include "bytes_text.hpp"
#include "input_error.hpp"
#include "model/architectures.hpp"
#include "parallel/failure_agreement.hpp"
#include "train/free_memory.hpp"
#include "train/trainer.hpp"

namespace est {

namespace {

const std::vector<std::string> kModelKeys = {"model.n_layer", "model.n_embd", "parallel.tp"};
const std::vector<std::string> kBatchKeys = {"train.batch_size", "model.seq_len", "parallel.tp"};

int64_t sum_of(const std::vector<BufferSize>& buffers, BufferUse use) {
  int64_t bytes = 0;
  for (const auto& b : buffers)
    if (b.use == use) bytes += b.bytes;
  return bytes;
}

bool samples_subnetworks(const Config& cfg) {
  const Schedule s = cfg.est.schedule.empty() ? full_schedule() : load_schedule(cfg.est.schedule);
  return std::any_of(s.stages.begin(), s.stages.end(), [](const StageSpec& st) { return !st.is_full(); });
}

// Host copies during a checkpoint (this rank's parameters and moments) or while the model file is written or
// read (the whole model, twice; three times when it is read, with the device copy): the largest of them.
int64_t staging_bytes(const Config& cfg, int64_t local_params_bytes, int64_t full_params_bytes) {
  const bool reads_model = cfg.init_from_llmc() || cfg.init_from_llama2c();
  return std::max(3 * local_params_bytes, (reads_model ? 3 : 2) * full_params_bytes);
}

// MPI's all-reduce temporaries are at most the message: the gradient across replicas, a (B*T, C) activation
// within a tensor-parallel group.
int64_t collective_bytes(const RankLayout& l, int64_t grad_bytes, int64_t activation_row_bytes) {
  int64_t bytes = 0;
  if (l.dp > 1) bytes = std::max(bytes, grad_bytes);
  if (l.tp > 1) bytes = std::max(bytes, activation_row_bytes);
  return bytes;
}

// bf16 products round their two operands into workspaces that grow to the largest A and the largest B. A linear
// layer reads (B*T, in) or (B*T, out) as A, (out, in) or (B*T, in) as B; attention, per call, one T x T map or
// T x head-size block as A and a T x head-size block as B for each of up to max(heads, B) products. Unsplit
// shapes: tensor parallelism splits all but the LM head, which is the largest.
int64_t bf16_operand_bytes(const ModelShape& s, int64_t B, int64_t T) {
  const int64_t BT = B * T, C = s.n_embd, hs = s.head_size(), Cq = int64_t(s.n_head) * hs, M = s.neurons();
  const int64_t qkv = Cq + 2 * int64_t(s.kv_heads()) * hs, fc = s.arch == Arch::llama ? 2 * M : M;
  const int64_t calls = std::max<int64_t>(s.n_head, B);
  int64_t a = calls * T * std::max(T, hs), b = calls * T * hs;
  const std::pair<int64_t, int64_t> linear[] = {{qkv, C}, {C, Cq}, {fc, C}, {C, M}, {s.padded_vocab_size, C}};
  for (const auto& [out, in] : linear) {
    a = std::max(a, BT * std::max(out, in));
    b = std::max(b, std::max(BT, out) * in);
  }
  return (a + b) * 2;
}

// Materialized attention keeps a T x T map per row (b, head, t) and layer, fused attention one float: its item
// says what the maps would take.
void add_attention(MemoryPlan& plan, const Config& cfg, const ModelShape& shape, const RankLayout& layout,
                   const std::vector<BufferSize>& buffers) {
  const std::vector<std::string> shrink = {"model.seq_len", "train.batch_size", "parallel.tp"};
  if (cfg.attention() == AttentionKind::materialized) {
    std::vector<std::string> keys = shrink;
    keys.push_back("model.attention");
    plan.items.push_back({"attention maps", sum_of(buffers, BufferUse::attention_maps), true, keys, false, ""});
    return;
  }
  const Partition share{0, layout.tp};
  const int64_t maps = sum_of(model_buffer_sizes(shape, layout.batch, plan.seq_len, share), BufferUse::attention_maps);
  plan.items.push_back({"attention statistics", sum_of(buffers, BufferUse::attention_statistics), true, shrink, false,
                        "fused attention: materialized, the attention maps would take " + format_bytes(double(maps))});
}

}  // namespace

int64_t MemoryPlan::total() const {
  return std::accumulate(items.begin(), items.end(), int64_t(0),
                         [](int64_t s, const MemoryItem& i) { return s + i.bytes; });
}

int64_t MemoryPlan::device_bytes() const {
  int64_t bytes = 0;
  for (const MemoryItem& i : items)
    if (i.device) bytes += i.bytes;
  return bytes;
}

const MemoryItem& MemoryPlan::largest() const {
  return *std::max_element(items.begin(), items.end(),
                           [](const MemoryItem& a, const MemoryItem& b) { return a.bytes < b.bytes; });
}

RankLayout training_layout(const Config& cfg, int ranks) {
  const int tp = cfg.parallel.tp;
  if (ranks == 0) ranks = tp;
  if (ranks < 1 || tp < 1 || ranks % tp != 0)
    throw InputError("", "--ranks", std::to_string(ranks) + " ranks do not split into tensor-parallel groups of " +
                                        "parallel.tp = " + std::to_string(tp));
  const int dp = ranks / tp;
  return RankLayout{tp, dp, max_batch_share(cfg, dp)};
}

MemoryPlan plan_memory(const Config& cfg, const ModelShape& shape, const RankLayout& layout, bool training) {
  const int T = cfg.model.seq_len;
  const std::vector<BufferSize> buffers =
      model_buffer_sizes(shape, layout.batch, T, Partition{0, layout.tp}, cfg.attention());
  MemoryPlan plan{cfg.path, layout, T, {}};
  const int64_t params = sum_of(buffers, BufferUse::parameters);
  auto add = [&](const char* name, int64_t bytes, bool device, std::vector<std::string> shrink) {
    plan.items.push_back({name, bytes, device, std::move(shrink), false, ""});
  };
  add("parameters", params, true, kModelKeys);
  add("gradients", sum_of(buffers, BufferUse::gradients), true, kModelKeys);
  add("AdamW moments", 2 * params, true, kModelKeys);
  add("compact copies", samples_subnetworks(cfg) ? sum_of(buffers, BufferUse::compact_copies) : 0, true,
      {"parallel.tp"});
  add("activations", sum_of(buffers, BufferUse::activations), true, kBatchKeys);
  add_attention(plan, cfg, shape, layout, buffers);
  add("logits", sum_of(buffers, BufferUse::logits), true, {"train.batch_size", "model.seq_len"});
  add("token batches", sum_of(buffers, BufferUse::batch), true, {"train.batch_size"});
  add("bf16 GEMM operands", cfg.runtime.precision == "bf16" ? bf16_operand_bytes(shape, layout.batch, T) : 0, true,
      {"train.batch_size", "model.seq_len", "runtime.precision"});
  const int64_t row_bytes = int64_t(layout.batch) * T * shape.n_embd * int64_t(sizeof(float));
  add("communication buffers", collective_bytes(layout, params, row_bytes), true, {"parallel.tp"});
  if (training) {
    const int64_t full = sum_of(model_buffer_sizes(shape, 1, 1), BufferUse::parameters);
    const int64_t host_batches = sum_of(buffers, BufferUse::batch);
    add("host staging (checkpoints, model file)", staging_bytes(cfg, params, full) + host_batches, false,
        {"parallel.tp"});
  }
  plan.items.push_back({"runtime (libraries, MPI, Kokkos)", resident_bytes(), false, {}, true, ""});
  return plan;
}

nlohmann::json to_json(const MemoryPlan& plan) {
  nlohmann::json items = nlohmann::json::array();
  for (const MemoryItem& i : plan.items)
    items.push_back({{"name", i.name},
                     {"bytes", i.bytes},
                     {"memory", i.device ? "device" : "host"},
                     {"shrink", i.shrink},
                     {"note", i.note}});
  return {{"config", plan.config},
          {"tp", plan.layout.tp},
          {"dp", plan.layout.dp},
          {"batch_per_rank", plan.layout.batch},
          {"seq_len", plan.seq_len},
          {"items", items},
          {"device_bytes", plan.device_bytes()},
          {"host_bytes", plan.total() - plan.device_bytes()},
          {"total_bytes", plan.total()},
          {"kernels_on_host", !free_device_memory().has_value()}};
}

std::string format_memory_plan(const MemoryPlan& plan) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%s: memory per rank (tp %d x dp %d, %d sequence(s) of %d tokens)\n",
                plan.config.c_str(), plan.layout.tp, plan.layout.dp, plan.layout.batch, plan.seq_len);
  out += line;
  // Where the kernels' memory is the host's, there is one kind of memory and no column for it.
  const bool split = free_device_memory().has_value();
  const auto row = [&](const std::string& name, const char* memory, int64_t bytes, const std::string& keys) {
    std::snprintf(line, sizeof line, "  %-40s%s%10s  %s\n", name.c_str(), memory, format_bytes(double(bytes)).c_str(),
                  keys.c_str());
    out += line;
  };
  for (const MemoryItem& i : plan.items) {
    std::string keys;
    if (i.bytes > 0)
      for (const std::string& k : i.shrink) keys += (keys.empty() ? "" : ", ") + k;
    row(i.name, split ? (i.device ? " device" : "   host") : "", i.bytes, keys);
    if (!i.note.empty()) out += "    (" + i.note + ")\n";
  }
  if (split) row("device total", "       ", plan.device_bytes(), "");
  row("total", split ? "       " : "", plan.total(), "");
  return out;
}

std::string memory_plan_summary(const MemoryPlan& plan) {
  const MemoryItem& big = plan.largest();
  return format_bytes(double(plan.total())) + " per rank planned (largest: " + big.name + ", " +
         format_bytes(double(big.bytes)) + "); est plan itemises it";
}

namespace {

std::string shrink_advice(const MemoryItem& item) {
  if (item.shrink.empty()) return "";
  std::string keys;
  for (size_t k = 0; k < item.shrink.size(); ++k)
    keys += (k == 0 ? "" : k + 1 == item.shrink.size() ? " or " : ", ") + item.shrink[k];
  return ": shrink it with " + keys;
}

std::string refusal(const MemoryPlan& plan, const std::string& need, const std::string& memory, int64_t free) {
  const MemoryItem& big = plan.largest();
  return "does not fit in memory: " + need + ", " + format_bytes(double(free)) + " of " + memory +
         " free; the largest item is " + big.name + ", " + format_bytes(double(big.bytes)) + shrink_advice(big) +
         " (est plan --config " + plan.config + " itemises it)";
}

// This rank's refusal, if it does not fit: its node's ranks' allocations together against the node's free
// memory, its device items against its GPU's.
std::string check_fit(const MemoryPlan& plan, MPI_Comm world) {
  const std::optional<int64_t> device_free = free_device_memory();
  int64_t host_need = 0, node_need = 0;
  for (const MemoryItem& i : plan.items)
    if (!i.resident && !(device_free && i.device)) host_need += i.bytes;
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int node_ranks = 1;
  MPI_Comm_size(node, &node_ranks);
  MPI_Allreduce(&host_need, &node_need, 1, MPI_INT64_T, MPI_SUM, node);
  MPI_Comm_free(&node);
  const int64_t host_free = free_host_memory();
  if (device_free && plan.device_bytes() > *device_free)
    return refusal(plan, "its device items need " + format_bytes(double(plan.device_bytes())), "this rank's GPU",
                   *device_free);
  if (node_need > host_free) {
    const std::string need = node_ranks > 1 ? "its " + std::to_string(node_ranks) + " ranks on this node need " +
                                                  format_bytes(double(node_need)) + " in all"
                                            : "it needs " + format_bytes(double(node_need));
    return refusal(plan, need + " beyond what is resident", "the node's memory", host_free);
  }
  return "";
}

}  // namespace

void require_fits(const MemoryPlan& plan, MPI_Comm world) {
  std::exception_ptr failure;
  const std::string why = check_fit(plan, world);
  if (!why.empty()) failure = std::make_exception_ptr(InputError(plan.config, "", why));
  raise_if_any_failed(world, failure);
}

}  // namespace est
