#include "config/public_key.h"

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <string>

namespace xcg::config {
namespace {

// Generated with OpenSSH 9.2 `ssh-keygen -t TYPE`; fingerprints as `ssh-keygen -lf` printed them.
struct Vector {
  const char* line;
  const char* type;
  unsigned bits;
  const char* comment;
  const char* fingerprint;
};

const Vector kVectors[] = {
    {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICE/4M2VoKgAH0U212LYmVBUCGY+E5kQn3S1AR6B7JHu "
     "alice@laptop",
     "ssh-ed25519", 256, "alice@laptop", "SHA256:CKTvBVVK0HpK/jSTdSn2NK+7fs8kuiombmxuE1CCxy0"},
    {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGQi92cL4eLoKWunTxA/E/9khJb8ZgriQcdrwFfHzb/W frank with "
     "spaces",
     "ssh-ed25519", 256, "frank with spaces", "SHA256:afZk0W2ATsQQ+sJyG+zU/RThD7Mt9cpIKrm7oLpyAlA"},
    {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG7hYqFAjY/6kUOGbyId7MAnDpW75U8p8VT5Ad0dzSnk ", "ssh-ed25519", 256,
     "", "SHA256:4MLwXd4k2YW/GOUckHHK2zHQj2rcHln52P8mfpUmwZs"},
    {"ecdsa-sha2-nistp256 "
     "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJiUNEhG2FBdmlyfNUS96RjrbQCscnF7YgFYll9rV"
     "I8MaMB1+0zY/pzyVx4NqRAeHtBfAB1sqMJo/hgFVZnKF78= bob@ecdsa256",
     "ecdsa-sha2-nistp256", 256, "bob@ecdsa256", "SHA256:URxX0N5O8/+NFtFlihdzf7HYEyta1Dm01fcQUpxhSO4"},
    {"ecdsa-sha2-nistp384 "
     "AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBK2fkWcuhwsRW/"
     "qDGmCyMRYRdoCS0piY0mxZu50js/bfTRkA4agikQ+PT6EKJJqWKFNTD5S/"
     "GOy+JLnC9CJZcYsKYnKoP1HDsBiKipOOg8QLn1Lp4bieyVrNdtXdVm8bLw== carol@ecdsa384",
     "ecdsa-sha2-nistp384", 384, "carol@ecdsa384", "SHA256:ud+di19Jy7QT0HSbJ5Pmq4AFI+9YCFKq7noWt/2NPB8"},
    {"ecdsa-sha2-nistp521 "
     "AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAAYDBFU1mx08r+i8/2XI/"
     "Iq2AoM3LO15flJABqQvzdqYyOUJJJo4CPZBH30m5dc6OQ91wtkNpeME11966K48oFPrQF0302A2G4chh9jUXso7cVQQwn"
     "9f3qeBSYY9zTrvXEAw1ZmMLb8ksJW/T7JIuF+a3hXNFP/ztlbyG716V35nkQjeg== dave@ecdsa521",
     "ecdsa-sha2-nistp521", 521, "dave@ecdsa521", "SHA256:bdTPjDQYNfKp96vXYqAgnn3sPyLcw+S2qX1CZ4SSnfY"},
    {"ssh-rsa "
     "AAAAB3NzaC1yc2EAAAADAQABAAABAQC1MeT9ZK7G2wpkR0w0qHt3pGPrjTyol7r08/"
     "LIiOOvzJowrR88kOhTyGkkdG2sQrgvQ87aGNSQ43rT4Rfbb0EGm08MkpDETa6WPZ3sYzYBGvIWtQmtKza3TuuzkxFx0cV"
     "S0IM1Ta4NnLN59an3GusaR0In9fLsdc595vr4qZbu+xq1bMOfJPhdz7YBnZmWPQ34DNGJajmnMhDub4ng/"
     "DnYTxYS+ThEXIARMUwfS/tZ9PxLZq+LOjfsX5b2E7NPidRdgP5cS8Y2VzUianZiOXpWYq9whUqcfp7ZRTEEXONsfMOg/"
     "hInv8dEdwUgXnHYK2HS/sY+GDKWUOcVxEwIC8v3 erin@rsa2048",
     "ssh-rsa", 2048, "erin@rsa2048", "SHA256:WzyHBYSwNlqEf1LU947vDP+128RUgsD0jyPg9ScEOBw"},
    {"ssh-rsa "
     "AAAAB3NzaC1yc2EAAAADAQABAAABgQDKekgE6QD53cSpA66jC/THySGwIeOklGogTRyLBWp3TAdc8F2XILkNV/"
     "eKmFF42S7b7MIg/HcmgEZmxzyS4V/jd6nWU663evEVOVohU6S5cdWFgqTjDZ+gvYqXYSnvmeR9Mt0ayJj/"
     "RGIF2eqY9qIL4cKpuw5EYc1Q4EXr/"
     "usCVVmtym+RQvUFOtZytF+4vx+IuWSK9XJcsic+6w6lX+"
     "W9mXKBTzckDziMqewmUc9xGLTouqKgaofpnEYw3UZgj6DRuUuhVtC0jcFYktKnjwm/lEtXH3NaiCErTK9/"
     "6GH004E2GLUeU5UoaowbIljFUtnlJuKbk1gXMtlhT0P+wY73Nxq19o1UILK7jyJE6cFl0s7vSswYnr3SEVb/"
     "qR9abBj1kRjMLFH22gb3N15PeVD7uNxN0cdv5y/"
     "ACMGfBAGqLsFEFLqIYesquVjMYbdhkH9dK+"
     "WLJC0T1oGwLRdHdENJzNaYE2cZ2yqIRna2qjxB6VtOiQ1DaDkevdF2HXFWkD0= gina@rsa3072",
     "ssh-rsa", 3072, "gina@rsa3072", "SHA256:mQ1IQB+GrYHgotV5TKILtwcLDePZsBL/+2vgBRe+VYo"},
};

const char kAliceLine[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICE/4M2VoKgAH0U212LYmVBUCGY+E5kQn3S1AR6B7JHu alice@laptop";
const char kRsa1024Line[] =
    "ssh-rsa "
    "AAAAB3NzaC1yc2EAAAADAQABAAAAgQCxsoRCwWtbzv4kvTgi/lMqDAcpvqjqQ+O6c/UMTWbOxrH57a0x+BAug4/"
    "ObMtMRCe5UPxil5PWEthMsFlxaE/"
    "F86gLaZ7K7SCoi2RvltctiHaA+RU9JMX5kBrIG9VNtaf5ba8SQQmbfyAJPKyCulBNWQuhwk9"
    "eOOBSLs6+P+r7mw== weak@rsa1024";
const char kDsaLine[] =
    "ssh-dss AAAAB3NzaC1kc3MAAACBAPJP32dAbdC2GsNLhD+l3ovLZnse/V5CXjgnVJh9hCDYhTV+XGCVJezK6ylwFjMah/"
    "CQJ4QKANORZIoQuu0n6K0aE9tJW/iW/"
    "iJQ44u+eMh1RRwztHDUi0kzekb8Pd010MzYRzUra6k5xdywH9R0tU4miG2xCf0dRuDl"
    "HxcSrE0VAAAAFQDweol6wP2rDHVY4DEBZ+DVYkUX/"
    "QAAAIB8FJ7xXGbQ92asx8XYzVotxvGhjo1WYPk70Di9qJa9vE16pGPVEDLn"
    "Yu8KpWArMX2PiI0d0vka+nsRn+F9Iz/ZiLeWBQn3XlX+yks5p5Yqd6XmfTZYlR/"
    "qkD3halQmdVg1jcvjrRzafc1GzT1+HBcDHAnx"
    "hdM84dO0CUOYl/wU5QAAAIEAv88rNLqvWDGmV6BZIqR6AT/zCvXKh2P78QcX6Sj/"
    "XIKOn4cKYVUW+HGAK4vtaPYdZz00mvZWZP3B"
    "dh8QY79+CSb8yurf6wE9UuksUXVFP/7mPsRW4Gp8BSYZHa3ORL0oGeREz1XnACDHW6nphsp1qTZHK7m//"
    "A9tuwuieeJFdDY= old@dsa";
// `ssh-keygen -s ca -I test -n alice` of alice's key.
const char kCertLine[] =
    "ssh-ed25519-cert-v01@openssh.com "
    "AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIDRuMlR30D9kD5ih"
    "qFVATs7Pm54dHFtJcyaLoA4rsjA/AAAAICE/"
    "4M2VoKgAH0U212LYmVBUCGY+E5kQn3S1AR6B7JHuAAAAAAAAAAAAAAABAAAABHRlc3Q"
    "AAAAJAAAABWFsaWNlAAAAAAAAAAD//////////"
    "wAAAAAAAACCAAAAFXBlcm1pdC1YMTEtZm9yd2FyZGluZwAAAAAAAAAXcGVybWl0LW"
    "FnZW50LWZvcndhcmRpbmcAAAAAAAAAFnBlcm1pdC1wb3J0LWZvcndhcmRpbmcAAAAAAAAACnBlcm1pdC1wdHkAAAAAAAAA"
    "DnBlcm1p"
    "dC11c2VyLXJjAAAAAAAAAAAAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIG+TEOGMMBST+ZL2AgvFo7P/"
    "PYhgZyZkHGOMcXPWS1O/AAAAUwAA"
    "AAtzc2gtZWQyNTUxOQAAAEBuUfAEOQeTe0DJm/TikYlWIb124ISwY/woD+udSoxb1+rhPk35fHRjciOsY0lS8/"
    "m+Xmoa6Z7eX6oM0FyQ"
    "Z60O alice@laptop";

// RFC 4251 "string": 32-bit big-endian length, then the bytes.
std::string ssh_string(std::string_view s) {
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((s.size() >> shift) & 0xff);
  out += s;
  return out;
}

// A line for `blob` that skips the blob checks' own encoder: openssh_line() only encodes.
std::string line_for(std::string_view type, std::string blob) {
  return PublicKey{std::string(type), std::move(blob), "", 0}.openssh_line();
}

std::string error_of(std::string_view line) {
  auto key = parse_public_key(line);
  REQUIRE_FALSE(key.has_value());
  CHECK(key.error().code == Errc::invalid_input);
  return key.error().message;
}

std::string blob_of(std::string_view line) {
  auto key = parse_public_key(line);
  REQUIRE(key);
  return key->blob;
}

std::string alice_blob() { return blob_of(kAliceLine); }

// What libssh's refusal of the key material is reported as.
const char kBadEd25519[] = "key data is not a valid ssh-ed25519 key: it must hold one 32-byte key";
const char kBadNistp256[] =
    "key data is not a valid ecdsa-sha2-nistp256 key: it must hold the curve name nistp256 and an "
    "uncompressed point on that curve";
const char kBadRsa[] = "key data is not a valid ssh-rsa key: it must hold a positive exponent and modulus";

TEST_CASE("parse_public_key reads ssh-keygen output and fingerprints it as ssh-keygen does") {
  for (const auto& v : kVectors) {
    INFO(v.line);
    auto key = parse_public_key(v.line);
    REQUIRE(key.has_value());
    CHECK(key->type == v.type);
    CHECK(key->bits == v.bits);
    CHECK(key->comment == v.comment);
    CHECK(key->fingerprint() == v.fingerprint);
    CHECK(fingerprint_of_blob(key->blob) == v.fingerprint);
    // openssh_line() re-encodes the blob: the first two words of the original line.
    std::string line = v.line;
    auto second_space = line.find(' ', line.find(' ') + 1);
    CHECK(key->openssh_line() == line.substr(0, second_space));
  }
}

TEST_CASE("sha256_hex_of_blob gives the SHA-256 digest in lower-case hex") {
  CHECK(sha256_hex_of_blob("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex_of_blob("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("parse_public_key tolerates surrounding whitespace and tabs") {
  auto key = parse_public_key(std::string("  \t") + kAliceLine + " \t\r\n");
  REQUIRE(key);
  CHECK(key->comment == "alice@laptop");
  CHECK(key->fingerprint() == "SHA256:CKTvBVVK0HpK/jSTdSn2NK+7fs8kuiombmxuE1CCxy0");
}

TEST_CASE("public_key_from_blob refuses the same types as parse_public_key") {
  CHECK(public_key_from_blob("ssh-dss", "").error().message ==
        "unsupported key type 'ssh-dss': DSA keys are obsolete");
  CHECK(public_key_from_blob("ssh-foo", "").error().message == "unknown key type 'ssh-foo'");
}

TEST_CASE("public_key_from_blob accepts what parse_public_key accepts") {
  for (const auto& v : kVectors) {
    auto parsed = parse_public_key(v.line);
    REQUIRE(parsed);
    auto key = public_key_from_blob(v.type, parsed->blob);
    REQUIRE(key);
    CHECK(key->type == v.type);
    CHECK(key->bits == v.bits);
    CHECK(key->comment.empty());
    CHECK(key->fingerprint() == v.fingerprint);
  }
}

TEST_CASE("RSA keys under 2048 bits are refused") {
  CHECK(error_of(kRsa1024Line) == "RSA key has 1024 bits; at least 2048 are required");
}

TEST_CASE("unsupported and unknown key types are refused by name") {
  CHECK(error_of(kDsaLine) == "unsupported key type 'ssh-dss': DSA keys are obsolete");
  CHECK(error_of(kCertLine) ==
        "unsupported key type 'ssh-ed25519-cert-v01@openssh.com': "
        "certificates are not supported; list the plain public key");
  CHECK(error_of("sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t x") ==
        "unsupported key type 'sk-ssh-ed25519@openssh.com': FIDO security keys are not supported");
  CHECK(error_of("sk-ecdsa-sha2-nistp256@openssh.com AAAA") ==
        "unsupported key type 'sk-ecdsa-sha2-nistp256@openssh.com': FIDO security keys are not "
        "supported");
  CHECK(error_of("ssh-foo AAAA") == "unknown key type 'ssh-foo'");
  CHECK(error_of("ecdsa-sha2-nistp999 AAAA") == "unknown key type 'ecdsa-sha2-nistp999'");
  CHECK(error_of("hello") == "unknown key type 'hello'");
}

TEST_CASE("a line with authorized_keys options is refused") {
  const std::string expected = "key options are not supported (the line must start with the key type)";
  CHECK(error_of(std::string("command=\"xl console web1\" ") + kAliceLine) == expected);
  CHECK(error_of(std::string("no-pty,no-port-forwarding ") + kAliceLine) == expected);
  CHECK(error_of(std::string("restrict ") + kAliceLine) == expected);
}

TEST_CASE("empty lines, missing and malformed base64 are refused") {
  CHECK(error_of("") == "empty key line");
  CHECK(error_of(" \t ") == "empty key line");
  CHECK(error_of("ssh-ed25519") == "key data is missing after 'ssh-ed25519'");
  CHECK(error_of("ssh-ed25519   ") == "key data is missing after 'ssh-ed25519'");
  CHECK(error_of("ssh-ed25519 AAAAC3Nz!C1lZDI1NTE5") == "key data is not valid base64");
  CHECK(error_of("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5A") == "key data is not valid base64");  // 17 chars
  CHECK(error_of("ssh-ed25519 AAAA=AAA") == "key data is not valid base64");
  CHECK(error_of("ssh-ed25519 A===") == "key data is not valid base64");
}

TEST_CASE("blob structure errors are refused") {
  const std::string blob = alice_blob();
  SECTION("truncated") {
    CHECK(error_of(line_for("ssh-ed25519", blob.substr(0, blob.size() - 1))) == kBadEd25519);
    CHECK(error_of(line_for("ssh-ed25519", blob.substr(0, 2))) == "key data is truncated");
    CHECK(public_key_from_blob("ssh-ed25519", "").error().message == "key data is truncated");
    CHECK(public_key_from_blob("ssh-ed25519", ssh_string("ssh-ed25519")).error().message == kBadEd25519);
  }
  SECTION("trailing bytes") {
    CHECK(error_of(line_for("ssh-ed25519", blob + "x")) == "key data has trailing bytes");
  }
  SECTION("inner type differs from the line's type") {
    CHECK(error_of(line_for("ssh-rsa", blob)) == "key data is of type 'ssh-ed25519', not 'ssh-rsa'");
    CHECK(public_key_from_blob("ecdsa-sha2-nistp256", blob).error().message ==
          "key data is of type 'ssh-ed25519', not 'ecdsa-sha2-nistp256'");
    CHECK(public_key_from_blob("ssh-rsa", ssh_string("a\x01\nb")).error().message ==
          "key data is of type 'a??b', not 'ssh-rsa'");
  }
  SECTION("ed25519 key of the wrong size") {
    CHECK(error_of(line_for("ssh-ed25519", ssh_string("ssh-ed25519") + ssh_string(std::string(31, 'k')))) ==
          kBadEd25519);
  }
  SECTION("ECDSA curve name must match the type") {
    // carol's valid nistp384 curve name and point, under the nistp256 type name.
    std::string p384 = blob_of(kVectors[4].line);
    std::string curve_and_point = p384.substr(4 + std::string_view("ecdsa-sha2-nistp384").size());
    CHECK(error_of(line_for("ecdsa-sha2-nistp256", ssh_string("ecdsa-sha2-nistp256") + curve_and_point)) ==
          "ECDSA curve 'nistp384' does not match key type 'ecdsa-sha2-nistp256'");
    std::string point = "\x04" + std::string(96, 'p');  // not on the nistp384 curve either
    CHECK(error_of(line_for("ecdsa-sha2-nistp256", ssh_string("ecdsa-sha2-nistp256") +
                                                       ssh_string("nistp384") + ssh_string(point))) ==
          kBadNistp256);
  }
  SECTION("ECDSA point must be uncompressed and of the curve's size") {
    auto with_point = [](const std::string& point) {
      return line_for("ecdsa-sha2-nistp256",
                      ssh_string("ecdsa-sha2-nistp256") + ssh_string("nistp256") + ssh_string(point));
    };
    CHECK(error_of(with_point("\x04" + std::string(63, 'p'))) == kBadNistp256);
    CHECK(error_of(with_point("\x02" + std::string(64, 'p'))) == kBadNistp256);
    CHECK(error_of(with_point("\x02" + std::string(32, 'p'))) == kBadNistp256);  // compressed
    CHECK(error_of(with_point("\x04" + std::string(64, 'p'))) == kBadNistp256);  // off the curve
  }
  SECTION("RSA exponent and modulus must be positive") {
    const std::string kE65537("\x01\x00\x01", 3);
    std::string modulus = std::string(1, '\0') + std::string(256, '\xff');  // 2048 bits
    auto rsa = [](const std::string& e, const std::string& n) {
      return line_for("ssh-rsa", ssh_string("ssh-rsa") + ssh_string(e) + ssh_string(n));
    };
    auto ok = parse_public_key(rsa(kE65537, modulus));
    REQUIRE(ok);
    CHECK(ok->bits == 2048);
    CHECK(error_of(rsa(kE65537, std::string(256, '\xff'))) ==
          "key data is not in canonical form: a number is negative or has leading zero bytes");
    CHECK(error_of(rsa(kE65537, std::string(1, '\0') + modulus)) ==
          "key data is not in canonical form: a number is negative or has leading zero bytes");
    CHECK(error_of(rsa("", modulus)) == kBadRsa);
    CHECK(error_of(rsa(kE65537, "")) == kBadRsa);
    CHECK(error_of(rsa(kE65537, std::string(2, '\0') + std::string(255, '\xff'))) ==
          "RSA key has 2040 bits; at least 2048 are required");
  }
}

// bob's nistp256 key with one coordinate changed: still 65 bytes and uncompressed, but no
// longer a point on the curve. The length-only check of old let such a point through.
TEST_CASE("an ECDSA point that is not on its curve is refused") {
  const std::string blob = blob_of(kVectors[3].line);
  REQUIRE(blob.size() == 4 + 19 + 4 + 8 + 4 + 65);
  std::string bad_y = blob;
  bad_y.back() = static_cast<char>(bad_y.back() + 1);
  std::string bad_x = blob;
  bad_x[blob.size() - 64] = static_cast<char>(bad_x[blob.size() - 64] ^ 0x01);
  for (const auto& off_curve : {bad_y, bad_x}) {
    CHECK(error_of(line_for("ecdsa-sha2-nistp256", off_curve)) == kBadNistp256);
    CHECK(public_key_from_blob("ecdsa-sha2-nistp256", off_curve).error().message == kBadNistp256);
  }
  std::string p384 = blob_of(kVectors[4].line);
  p384.back() = static_cast<char>(p384.back() + 1);
  CHECK(error_of(line_for("ecdsa-sha2-nistp384", p384))
            .starts_with("key data is not a valid ecdsa-sha2-nistp384 key"));
}

TEST_CASE("every truncation of a valid key blob is refused") {
  for (const auto& v : kVectors) {
    INFO(v.line);
    const std::string blob = blob_of(v.line);
    for (size_t len = 0; len < blob.size(); ++len) {
      INFO(len);
      auto key = public_key_from_blob(v.type, blob.substr(0, len));
      REQUIRE_FALSE(key);
      CHECK(key.error().code == Errc::invalid_input);
      if (len < 4 + std::string_view(v.type).size()) CHECK(key.error().message == "key data is truncated");
      else CHECK(key.error().message.starts_with(fmt::format("key data is not a valid {} key", v.type)));
    }
  }
}

TEST_CASE("a blob whose inner type differs from the line's type is refused") {
  // libssh's own import reads the blob as the type it is told and skips the inner name: a
  // nistp256 blob imports as a nistp384 key there.
  const std::string p256 = blob_of(kVectors[3].line);
  CHECK(error_of(line_for("ecdsa-sha2-nistp384", p256)) ==
        "key data is of type 'ecdsa-sha2-nistp256', not 'ecdsa-sha2-nistp384'");
  CHECK(error_of(line_for("ssh-rsa", p256)) == "key data is of type 'ecdsa-sha2-nistp256', not 'ssh-rsa'");
  const std::string rsa = blob_of(kVectors[6].line);
  CHECK(error_of(line_for("ssh-ed25519", rsa)) == "key data is of type 'ssh-rsa', not 'ssh-ed25519'");
}

TEST_CASE("RSA keys under 2048 bits are refused from the SSH layer too") {
  auto rsa_blob = [](const std::string& modulus) {
    return ssh_string("ssh-rsa") + ssh_string(std::string("\x01\x00\x01", 3)) + ssh_string(modulus);
  };
  auto small = public_key_from_blob("ssh-rsa", rsa_blob("\x7f" + std::string(255, '\xff')));
  REQUIRE_FALSE(small);
  CHECK(small.error().message == "RSA key has 2047 bits; at least 2048 are required");
  auto smallest_allowed =
      public_key_from_blob("ssh-rsa", rsa_blob(std::string("\0\x80", 2) + std::string(255, '\x01')));
  REQUIRE(smallest_allowed);
  CHECK(smallest_allowed->bits == 2048);
}

}  // namespace
}  // namespace xcg::config
