// migrations/<domain>: what the source and the destination of a simulated migration write.
#include "gateway/cluster/migration_record.h"

#include <catch2/catch.hpp>

using namespace xcg;

TEST_CASE("a migration record round-trips through its JSON", "[cluster][migration]") {
  for (auto step :
       {MigrationStep::asked, MigrationStep::ready, MigrationStep::moved, MigrationStep::refused}) {
    MigrationRecord record{"node-a", "node-b", step,
                           step == MigrationStep::refused ? "web1 is not node-b's" : ""};
    auto back = decode_migration(encode_migration(record));
    REQUIRE(back);
    CHECK(back->from == "node-a");
    CHECK(back->to == "node-b");
    CHECK(back->step == step);
    CHECK(back->error == record.error);
  }
  CHECK(migrations_prefix("/xcg/") == "/xcg/migrations/");
}

TEST_CASE("a migration record that does not say who moves what where is not one", "[cluster][migration]") {
  CHECK_FALSE(decode_migration("not json"));
  CHECK_FALSE(decode_migration(R"({"from":"node-a","to":"node-b"})"));
  CHECK_FALSE(decode_migration(R"({"from":"node-a","to":"node-b","step":"teleported"})"));
  CHECK_FALSE(decode_migration(R"({"from":"node-a","step":"asked"})"));
  CHECK_FALSE(decode_migration(R"({"from":"node-a","to":"node-a","step":"asked"})"));
  CHECK(decode_migration(R"({"from":"node-a","to":"node-b","step":"asked"})"));
}
