#pragma once
// The time files record as their creation: ISO 8601 in UTC, to the second ("2026-11-28T03:24:00Z").
#include <string>

namespace est {

std::string iso_utc_now();

}  // namespace est
