import pytest

from .tutorials import QUICK_ENV, missing, read_tutorial, tutorial_pages


def _skip_reason(absent: list[tuple[str, int]]) -> str:
    issues = sorted({issue for _, issue in absent})
    names = ", ".join(name for name, _ in absent)
    return f"needs issue {', '.join(map(str, issues))} code ({names} not importable)"


@pytest.mark.parametrize("page", tutorial_pages(), ids=lambda p: p.stem)
def test_tutorial_runs(page, tmp_path, monkeypatch):
    """Run the page's python blocks in order, in a fresh folder, at tutorial-test sizes."""
    _, blocks = read_tutorial(page)
    assert blocks, f"{page} has no python blocks"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(QUICK_ENV, "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace = {"__name__": "__tutorial__"}
    for i, block in enumerate(blocks):
        absent = missing(block.requires)
        if absent:
            ran = f"; ran the {i} blocks before line {block.line}" if i else ""
            pytest.skip(_skip_reason(absent) + ran)
        # Line numbers in tracebacks point into the page.
        code = compile("\n" * (block.line - 1) + block.code, str(page), "exec")
        exec(code, namespace)  # noqa: S102 - the documentation's own code, by design


def test_reader_finds_blocks_and_requirements(tmp_path):
    page = tmp_path / "t.md"
    page.write_text(
        "---\ntutorial:\n  requires:\n    os:sep: 1\n---\n# T\n\n```python\nx = 1\n```\n\n"
        "<!-- requires: rs_metapeft:no_such_thing=9 -->\n```python\ny = x\n```\n```bash\nls\n```\n"
    )
    meta, blocks = read_tutorial(page)
    assert [b.code for b in blocks] == ["x = 1\n", "y = x\n"]
    assert blocks[0].line == 9 and blocks[0].requires == {"os:sep": 1}
    assert blocks[1].requires == {"os:sep": 1, "rs_metapeft:no_such_thing": 9}
    assert missing(blocks[1].requires) == [("rs_metapeft:no_such_thing", 9)]
    assert _skip_reason(missing(blocks[1].requires)).startswith("needs issue 9 code")

