#include "io/inspect.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "input_error.hpp"
#include "io/checkpoint.hpp"
#include "io/hdf5_util.hpp"

namespace est {
namespace {

using nlohmann::json;

std::string kind_of(hid_t file, const std::string& path) {
  const auto kind = h5::read_string_attribute(file, "est_kind", path);
  if (!kind) throw InputError(path, "est_kind", "missing: not a file est wrote");
  return *kind;
}

// A one-dimensional dataset of the trace, converted to T (int64_t or double).
template <class T>
std::vector<T> read_column(hid_t file, const char* name, const std::string& path) {
  const H5Handle d = h5::open_dataset(file, name, path);
  const std::string where = path + ": dataset " + name;
  std::vector<T> v(h5::column_rows(d.get(), path, name));
  const hid_t type = std::is_same_v<T, double> ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64;
  if (!v.empty()) h5_check(H5Dread(d.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), where + ": H5Dread");
  return v;
}

json string_or_null(const std::optional<std::string>& s) { return s ? json(*s) : json(); }
json int_or_null(const std::optional<int64_t>& v) { return v ? json(*v) : json(); }

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// The last row whose value is a number, as {step, value}.
json last_number(const std::vector<int64_t>& steps, const std::vector<double>& values, size_t rows) {
  for (size_t i = rows; i-- > 0;)
    if (!std::isnan(values[i])) return {{"step", steps[i]}, {"value", values[i]}};
  return nullptr;
}

json stage_boundaries(const std::vector<int64_t>& steps, const std::vector<int64_t>& stages, size_t rows) {
  json out = json::array();
  for (size_t i = 0; i < rows; ++i)
    if (i == 0 || stages[i] != stages[i - 1]) out.push_back({{"stage", stages[i]}, {"first_step", steps[i]}});
  return out;
}

json root_attributes(hid_t file, const std::string& path) {
  json j;
  j["format_version"] = int_or_null(h5::read_int_attribute(file, "format_version", path));
  for (const char* name : {"created", "git_revision", "host"})
    j[name] = string_or_null(h5::read_string_attribute(file, name, path));
  j["grid"] = {{"ranks", int_or_null(h5::read_int_attribute(file, "ranks", path))},
               {"tp", int_or_null(h5::read_int_attribute(file, "tp", path))},
               {"dp", int_or_null(h5::read_int_attribute(file, "dp", path))}};
  j["arch"] = string_or_null(h5::read_string_attribute(file, "arch", path));
  for (const char* name : {"n_layer", "n_head", "n_kv_head", "n_embd", "mlp_hidden"})
    j[name] = int_or_null(h5::read_int_attribute(file, name, path));
  j["config_first_line"] = first_line(h5::read_string_attribute(file, "config", path).value_or(""));
  return j;
}

json trace_facts(hid_t file, const std::string& path) {
  const auto steps = read_column<int64_t>(file, "step", path);
  const auto stages = read_column<int64_t>(file, "stage", path);
  const auto loss = read_column<double>(file, "loss", path);
  const auto val_loss = read_column<double>(file, "val_loss", path);
  const auto flops = read_column<double>(file, "flops_cumulative", path);
  const auto tokens = read_column<int64_t>(file, "tokens", path);
  // A live trace is extended one dataset at a time: count only rows every dataset holds.
  const size_t n = std::min({steps.size(), stages.size(), loss.size(), val_loss.size(), flops.size(), tokens.size()});
  json j = {{"file", path}, {"kind", "trace"}};
  j.update(root_attributes(file, path));
  j["rows"] = n;
  j["first_step"] = n ? json(steps.front()) : json();
  j["last_step"] = n ? json(steps[n - 1]) : json();
  j["last_loss"] = n ? json({{"step", steps[n - 1]}, {"value", loss[n - 1]}}) : json();
  j["last_val_loss"] = last_number(steps, val_loss, n);
  j["flops_total"] = n ? json(flops[n - 1]) : json();
  j["tokens"] = n ? json(tokens[n - 1]) : json();
  j["stages"] = stage_boundaries(steps, stages, n);
  return j;
}

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* names) {
  static_cast<std::vector<std::string>*>(names)->push_back(name);
  return 0;
}

// Every dataset at the root with its rows.
std::vector<std::pair<std::string, hsize_t>> root_datasets(hid_t file, const std::string& path) {
  std::vector<std::string> names;
  h5_check(H5Literate(file, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names), path + ": H5Literate");
  std::vector<std::pair<std::string, hsize_t>> out;
  for (const std::string& name : names) {
    const std::string where = path + ": " + name;
    H5Handle obj(h5_check(H5Oopen(file, name.c_str(), H5P_DEFAULT), where + ": H5Oopen"), H5Oclose);
    if (H5Iget_type(obj.get()) == H5I_DATASET) out.emplace_back(name, h5::rows(obj.get(), where));
  }
  return out;
}

std::vector<std::string> trace_problems(hid_t file, const std::string& path) {
  std::vector<std::string> problems;
  const auto steps = read_column<int64_t>(file, "step", path);
  for (const auto& [name, rows] : root_datasets(file, path))
    if (rows != steps.size())
      problems.push_back("dataset " + name + " has " + std::to_string(rows) + " rows, step has " +
                         std::to_string(steps.size()));
  for (size_t i = 1; i < steps.size(); ++i)
    if (steps[i] <= steps[i - 1])
      problems.push_back("step " + std::to_string(steps[i]) + " (row " + std::to_string(i) + ") follows step " +
                         std::to_string(steps[i - 1]));
  return problems;
}

json inspect_trace(const std::string& path, bool verify) {
  H5Handle file = h5::open_for_reading(path);
  json j = trace_facts(file.get(), path);
  if (verify) {
    const auto problems = trace_problems(file.get(), path);
    j["verify"] = {{"ok", problems.empty()}, {"problems", problems}};
  }
  return j;
}

json inspect_checkpoint(const std::string& path, bool verify) {
  json j = describe_checkpoint(path);
  if (verify) {
    const auto bad = verify_checkpoint(path);
    j["verify"] = {{"ok", bad.empty()}, {"bad_datasets", bad}};
  }
  return j;
}

std::string text(const json& v) {
  if (v.is_null()) return "n/a";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array() && std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_number(); })) {
    std::string s;
    for (const json& x : v) s += (s.empty() ? "" : " x ") + x.dump();
    return s;
  }
  if (v.is_object()) {
    std::string s;
    for (const auto& [k, x] : v.items()) s += (s.empty() ? "" : ", ") + k + " " + text(x);
    return s;
  }
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
    return buf;
  }
  return v.dump();
}

void print_row(const std::string& key, const std::string& value) {
  std::printf("  %-18s %s\n", key.c_str(), value.c_str());
}

std::string at_step(const json& v) {
  return v.is_null() ? "n/a" : text(v["value"]) + " (step " + v["step"].dump() + ")";
}

void print_trace(const json& j) {
  std::printf("%s: est trace, format %s, created %s, git %s\n", j["file"].get<std::string>().c_str(),
              text(j["format_version"]).c_str(), text(j["created"]).c_str(), text(j["git_revision"]).c_str());
  const std::string steps = j["rows"] > 0 ? ", steps " + text(j["first_step"]) + ".." + text(j["last_step"]) : "";
  print_row("rows", j["rows"].dump() + steps);
  print_row("last loss", at_step(j["last_loss"]));
  print_row("last val loss", at_step(j["last_val_loss"]));
  print_row("FLOPs", text(j["flops_total"]));
  print_row("tokens", text(j["tokens"]));
  const json& g = j["grid"];
  print_row("grid", text(g["ranks"]) + " ranks = tp " + text(g["tp"]) + " x dp " + text(g["dp"]));
  // Traces from before Llama name no architecture: those are GPT-2's.
  const std::string arch = j["arch"].is_null() ? "gpt2" : j["arch"].get<std::string>();
  std::string model = arch + ", " + text(j["n_layer"]) + " layers, n_embd " + text(j["n_embd"]) + ", " +
                      text(j["n_head"]) + " heads";
  if (!j["n_kv_head"].is_null() && j["n_kv_head"] != j["n_head"]) model += " over " + text(j["n_kv_head"]) + " KV heads";
  if (!j["mlp_hidden"].is_null()) model += ", " + text(j["mlp_hidden"]) + " MLP neurons";
  print_row("model", model);
  std::string stages;
  for (const json& s : j["stages"])
    stages += (stages.empty() ? "" : ", ") + s["stage"].dump() + " from step " + s["first_step"].dump();
  print_row("stages", stages.empty() ? "n/a" : stages);
  print_row("config", j["config_first_line"].get<std::string>());
}

// describe_checkpoint's keys as they come; a list of records (the datasets) one per line.
void print_checkpoint(const std::string& path, const json& j) {
  std::printf("%s: est checkpoint\n", path.c_str());
  for (const auto& [key, v] : j.items()) {
    if (key == "kind" || key == "path" || key == "verify") continue;
    if (!v.is_array() || v.empty() || !v.front().is_object()) {
      print_row(key, text(v));
      continue;
    }
    print_row(key, std::to_string(v.size()));
    for (const json& record : v) {
      std::string line;
      for (const auto& field : record) line += (line.empty() ? "" : "  ") + text(field);
      std::printf("    %s\n", line.c_str());
    }
  }
}

void print_verify(const json& v) {
  if (v["ok"].get<bool>()) {
    std::printf("verify: ok\n");
    return;
  }
  const json& list = v.contains("problems") ? v["problems"] : v["bad_datasets"];
  std::printf("verify: %zu %s\n", list.size(), v.contains("problems") ? "problem(s)" : "dataset(s) fail the checksum");
  for (const json& p : list) std::printf("  %s\n", p.get<std::string>().c_str());
}

}  // namespace

int inspect_file(const std::string& path, bool verify, bool as_json) {
  const std::string kind = kind_of(h5::open_for_reading(path).get(), path);
  json j;
  if (kind == "trace")
    j = inspect_trace(path, verify);
  else if (kind == "checkpoint")
    j = inspect_checkpoint(path, verify);
  else
    throw InputError(path, "est_kind", "'" + kind + "'; est inspect reads traces and checkpoints");
  if (as_json) {
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    if (kind == "trace")
      print_trace(j);
    else
      print_checkpoint(path, j);
    if (verify) print_verify(j["verify"]);
  }
  return verify && !j["verify"]["ok"].get<bool>() ? 1 : 0;
}

}  // namespace est
