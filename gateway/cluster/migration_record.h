// A simulated live migration's record, migrations/<domain> (docs/fleet.md, "Migration"): how
// the source node and the destination node tell each other where the move stands.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace xcg {

// asked: the source wants `to` to take the domain; ready: `to` serves it and it is not running
// there; moved: the source's guest is gone, `to` starts it; refused: `to` said why not.
enum class MigrationStep { asked, ready, moved, refused };

struct MigrationRecord {
  std::string from;
  std::string to;
  MigrationStep step = MigrationStep::asked;
  std::string error;  // with refused: the destination's reason, for the operator
};

std::string migrations_prefix(std::string_view prefix);  // <prefix>migrations/
std::string encode_migration(const MigrationRecord& record);
// nullopt for a value that is not such a record.
std::optional<MigrationRecord> decode_migration(std::string_view value);

}  // namespace xcg
