"""`xcg check --config FILE`: exit 0 when valid, else FILE:LINE:COLUMN: message lines."""

import re
import subprocess

from conftest import default_domains, describe, render_config


def check(xcg, path):
    return subprocess.run([xcg, "check", "--config", str(path)], capture_output=True,
                          text=True, timeout=20, stdin=subprocess.DEVNULL)


def problem_lines(result, path):
    pattern = re.compile(rf"^{re.escape(str(path))}:(\d+):(\d+): (.+)$")
    text = result.stdout + result.stderr
    return [(int(m[1]), int(m[2]), m[3]) for m in map(pattern.match, text.splitlines()) if m]


def test_good_config_passes(xcg_binary, keys, tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(render_config(tmp_path, default_domains(keys), {"autostart": True}))
    result = check(xcg_binary, path)
    assert result.returncode == 0, describe(result)


def test_broken_config_reports_every_problem(xcg_binary, keys, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(
        'listen: ["127.0.0.1:0"]\n'                                   # 1
        f'host_keys: ["{tmp_path}/hostkey"]\n'                        # 2
        "hypervisor: sim\n"                                           # 3
        "domains:\n"                                                  # 4
        "  web1:\n"                                                   # 5
        '    keys: ["ssh-ed25519 AAAAnot-a-key alice"]\n'             # 6
        "  web2:\n"                                                   # 7
        "    on_login: sideways\n"                                    # 8
        f'    keys: ["{keys["web2"].public_line}"]\n'                 # 9
        "  web3:\n"                                                   # 10
        "    actions: [console, explode]\n"                           # 11
        f'    keys: ["{keys["web3"].public_line}"]\n'                 # 12
    )
    result = check(xcg_binary, path)
    assert result.returncode == 1, describe(result)
    problems = problem_lines(result, path)
    lines = {line for line, _, _ in problems}
    assert {6, 8, 11} <= lines, describe(result)
    assert all(column >= 1 for _, column, _ in problems), problems
    # The column points into the offending line, at or after its indentation.
    by_line = {line: column for line, column, _ in problems}
    assert by_line[8] >= 5 and by_line[11] >= 5, problems


def test_syntax_error_has_location(xcg_binary, tmp_path):
    path = tmp_path / "syntax.yaml"
    path.write_text('listen: ["127.0.0.1:0"\nhypervisor: sim\n')
    result = check(xcg_binary, path)
    assert result.returncode == 1, describe(result)
    assert problem_lines(result, path), describe(result)


def test_unknown_field_is_reported(xcg_binary, keys, tmp_path):
    # Beyond the brief, but a silently ignored typo ("acitons:") would grant every action.
    path = tmp_path / "typo.yaml"
    text = render_config(tmp_path, default_domains(keys), {"autostart": True})
    text = text.replace("hypervisor: sim\n", "hypervisor: sim\nhypervisr: xen\n")
    path.write_text(text)
    result = check(xcg_binary, path)
    assert result.returncode == 1, describe(result)
    lines = [line for line, _, _ in problem_lines(result, path)]
    assert 4 in lines, describe(result)


def test_key_listed_twice_names_both_places(xcg_binary, keys, tmp_path):
    # A key listed twice is a configuration error naming both places.
    path = tmp_path / "dup.yaml"
    domains = default_domains(keys)
    domains["web3"]["keys"] = [keys["web1"].public_line]
    path.write_text(render_config(tmp_path, domains, {"autostart": True}))
    text = path.read_text().splitlines()
    places = [i + 1 for i, line in enumerate(text) if keys["web1"].public_line in line]
    assert len(places) == 2
    result = check(xcg_binary, path)
    assert result.returncode == 1, describe(result)
    output = result.stdout + result.stderr
    problems = problem_lines(result, path)
    assert problems, describe(result)
    for line in places:
        assert re.search(rf"\b{line}\b", output), (line, describe(result))


def test_missing_file(xcg_binary, tmp_path):
    result = check(xcg_binary, tmp_path / "nope.yaml")
    assert result.returncode != 0, describe(result)
    assert "nope.yaml" in result.stdout + result.stderr, describe(result)
