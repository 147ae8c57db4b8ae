"""hashbench report: the site's pages hold every row of the result files and link only to what
exists; the README's tables are the ones the result files give; missing and corrupt inputs."""

import csv
import html
import json
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from hashbench import results as store
from hashbench.cli import main
from hashbench.errors import InputError
from hashbench.report import (
    EXPERIMENT_PAGES,
    README_TABLES,
    SCREENSHOT,
    TABLE_PAGES,
    build_site,
    markdown_tables,
    readme_blocks,
    replace_blocks,
)
from hashbench.results import (
    COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    read_results,
    row_key,
    write_row,
)
from hashbench.storedcodes import cell_id, resolve

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
CHROMIUM = Path("/usr/bin/chromium")


def make_row(**values) -> dict:
    """A complete result row (every column the store has, whatever they are) with ``values``."""
    row = {c: (0 if c in INT_COLUMNS else 0.5 if c in FLOAT_COLUMNS else "") for c in COLUMNS}
    row.update({"dataset": "cifar10", "protocol": "cifar10-dsh", "features": "gist", "method": "lsh", "bits": 48,
                "params": "{}", "version": "0.1.0", "machine": "test machine; 2 cores",
                "timestamp": "2026-01-01T00:00:00+00:00", "curves": {"pr_curve": []}, "map_at_k": None})
    if "schema" in COLUMNS:  # the result schema's own column, where the store has one
        row["schema"] = store.SCHEMA
    row.update(values)
    return row


def small_results(folder: Path) -> Path:
    """table4 with three rows the paper reports (one per protocol for LSH, one KSH), table1
    with one, a figure of table1's, and a leaderboard of another shape."""
    folder.mkdir(parents=True, exist_ok=True)
    write_row(folder / "table4.csv", make_row(method="lsh", map=0.1462))
    write_row(folder / "table4.csv", make_row(method="lsh", protocol="cifar10-standard", map=0.2))
    write_row(folder / "table4.csv", make_row(method="ksh", map=0.3121, n_labelled=2000))
    write_row(folder / "table4.csv", make_row(method="itq", map=0.25))  # not in the paper's Table 4
    write_row(folder / "table1.csv", make_row(features="images", method="dsh", bits=12, precision_r2=0.6,
                                              params=json.dumps({"alpha": 0.001})))
    Image.new("RGB", (40, 30), (10, 120, 200)).save(folder / "figure1.png")
    Image.new("RGB", (30, 20), (200, 120, 10)).save(folder / "figure3.png")  # table2's, which is absent
    (folder / "leaderboard.csv").write_text("method,map\nlsh,0.1\nksh,0.3\n")
    (folder / "checks.csv").write_text("protocol,level,value\na,0.5,1\nb,0.25,2\nc,0,3\n")  # a script's table
    return folder


class Page(HTMLParser):
    """The tables (rows per id), link and image targets, ids and details of one page."""

    def __init__(self, path: Path):
        super().__init__()
        self.rows, self.links, self.ids, self.classes = {}, [], set(), []
        self.details = 0
        self._table, self._in_body = [], False
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if "class" in a:
            self.classes.append(a["class"])
        if tag == "table":
            self._table.append(a.get("id"))
            self.rows[a.get("id")] = 0
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows[self._table[-1]] += 1
        elif tag in ("a", "img", "link", "script"):
            target = a.get("href") or a.get("src")
            if target:
                self.links.append(target)
        elif tag == "details":
            self.details += 1

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table.pop()


def check_links(site: Path) -> dict[str, Page]:
    """Parse every page; every link and image points to a file of the site (and to an id
    that page has), none leaves it."""
    pages = {p.name: Page(p) for p in site.glob("*.html")}
    for name, page in pages.items():
        for target in page.links:
            assert "://" not in target and not target.startswith("//"), f"{name} links outside: {target}"
            path, _, frag = target.partition("#")
            assert (site / path).is_file(), f"{name}: broken link {target}"
            if frag:
                assert frag in pages[path].ids, f"{name}: {target} names no element of {path}"
    return pages


def csv_rows(path: Path) -> int:
    with open(path, newline="", encoding="utf-8") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def test_site_pages_hold_every_row_and_link_only_to_what_exists(tmp_path):
    res = small_results(tmp_path / "results")
    (res / "codes").mkdir()
    ksh_key = row_key(read_results(res / "table4.csv").iloc[2])
    (res / "codes" / f"{cell_id(ksh_key)}.npz").write_bytes(b"")  # KSH's stored codes (present is what counts)
    site = tmp_path / "site"
    build_site(res, site)
    pages = check_links(site)
    t4 = pages["table4.html"]
    assert t4.rows["rows"] == csv_rows(res / "table4.csv") == 4
    assert t4.details == 4  # one provenance per row
    assert t4.rows["vs-paper"] == 3  # ITQ is not in the paper's Table 4
    assert t4.rows["layout"] == 2  # the README's layout: LSH and KSH on GIST
    text = (site / "table4.html").read_text()
    assert text.count("<dt>stored codes</dt>") == 1 and "--stored results/table4.csv:3" in text  # its 3rd row
    with pytest.raises(InputError, match=f"cannot read .*{cell_id(ksh_key)}.npz"):  # the file evaluate reads (empty)
        resolve(f"{res}/table4.csv:3")
    assert "test machine; 2 cores" in text and "2026-01-01T00:00:00+00:00" in text  # provenance
    # KSH: 0.3121 - 0.4167 = -0.1046, far below; LSH under cifar10-standard: +0.0508, far above
    assert '<td class="num d-far-below" data-sort="-0.1046' in text and ">-0.1046</td>" in text
    assert ">+0.0508</td>" in text and "d-far-above" in text and "d-near" in text
    assert pages["table1.html"].rows["rows"] == 1 and "figures/figure1.png" in pages["table1.html"].links
    assert (site / "figures" / "figure1.png").read_bytes() == (res / "figure1.png").read_bytes()
    assert pages["leaderboard.html"].rows["leaderboard"] == 2
    assert pages["table-checks.html"].rows["checks"] == 3 and "table-checks.html" in pages["index.html"].links
    assert pages["figures.html"].links.count("figures/figure3.png") == 1 and "figures.html" in pages["index.html"].links
    # a method page: its parameters and every cell of it, each linking to its row
    ksh = pages["method-ksh.html"]
    assert ksh.rows["cells"] == 1 and "table4.html#table4-L4" in ksh.links
    assert ksh.rows["parameters"] >= 3 and "n_anchors" in (site / "method-ksh.html").read_text()
    assert "Liu, Wang, Ji, Jiang, Chang, CVPR 2012" in (site / "method-ksh.html").read_text()
    # absent experiments are named, on the index and on their pages
    index = (site / "index.html").read_text()
    for name in ("figure6", "table2", "table3"):
        assert f"{name}.csv" in index and "missing" in (site / f"{name}.html").read_text().lower()
    assert "search-speed.csv" in index and "figure2.png" in index  # figure2 draws on table1's grid


def test_site_for_the_committed_results(tmp_path):
    build_site(RESULTS, tmp_path / "site")
    pages = check_links(tmp_path / "site")
    for name in EXPERIMENT_PAGES:
        assert pages[f"{name}.html"].rows["rows"] == csv_rows(RESULTS / f"{name}.csv")
        vs = RESULTS / f"{name}-vs-paper.csv"
        assert pages[f"{name}.html"].rows["vs-paper"] == csv_rows(vs)
    shown = sum(p.rows.get("cells", 0) for n, p in pages.items() if n.startswith("method-"))
    csvs = [p for p in RESULTS.glob("*.csv") if not p.stem.endswith("-vs-paper")]
    results = [p for p in csvs if "params" in p.read_text().split("\n")[0].split(",") and p.stem not in TABLE_PAGES]
    assert shown == sum(csv_rows(p) for p in results)  # every experiment's row on its method's page
    for p in set(csvs) - set(results):  # tables of other shapes, as they are
        page = "{}.html".format(p.stem if p.stem in ("leaderboard", "search-speed") else "table-" + p.stem)
        assert pages[page].rows[p.stem] == csv_rows(p)
    figures = {p.name for p in RESULTS.glob("*.png")} - {SCREENSHOT}
    assert {p.name for p in (tmp_path / "site" / "figures").iterdir()} == figures


def test_empty_results_folder_says_what_is_missing(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    assert main(["report", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "site")]) == 0
    err = capsys.readouterr().err
    for name in EXPERIMENT_PAGES:
        assert f"{name}.csv" in err
    pages = check_links(tmp_path / "site")
    assert pages["index.html"].rows["experiments"] == len(EXPERIMENT_PAGES) + 2
    assert main(["report", "--results", str(tmp_path / "results"), "--markdown"]) == 0
    out = capsys.readouterr().out
    files = {"search-knn": "search-speed", "search-radius": "search-speed", "literature": "literature-cifar10-1k",
             "leaderboard-releases": "leaderboard"}
    assert all(f"`{files.get(name, name)}.csv` is missing" in out for name in README_TABLES)


def test_corrupt_result_file_is_one_line_and_exit_2_and_no_site(tmp_path, capsys):
    res = small_results(tmp_path / "results")
    with open(res / "table1.csv", "a") as f:
        f.write("cifar10,cifar10-dsh,images,dsh,12")  # a torn row
    assert main(["report", "--results", str(res), "--out", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "table1.csv" in err  # the result store's own message
    assert not (tmp_path / "site").exists()
    assert main(["report", "--results", str(res), "--markdown"]) == 2
    assert "table1.csv" in capsys.readouterr().err
    (res / "table1.csv").unlink()
    write_row(res / "table1.csv", make_row(method="dsh", features="images", params="not json"))
    assert main(["report", "--results", str(res), "--out", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "table1.csv" in err
    (res / "table1.csv").unlink()
    (res / "leaderboard.csv").write_text("method,map\nlsh,0.1,extra\n")
    assert main(["report", "--results", str(res), "--out", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "leaderboard.csv:2" in err


def test_out_replaces_a_previous_site_and_refuses_other_folders(tmp_path, capsys):
    res = small_results(tmp_path / "results")
    site = tmp_path / "site"
    build_site(res, site)
    (res / "table1.csv").unlink()
    build_site(res, site)  # the new site replaces the old one whole
    assert "missing" in (site / "table1.html").read_text().lower()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site")]  # no temporary folder left
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main(["report", "--results", str(res), "--out", str(mine)]) == 2
    assert (mine / "notes.txt").read_text() == "keep"
    assert main(["report", "--results", str(res), "--out", str(res)]) == 2
    assert main(["report", "--results", str(tmp_path / "nowhere"), "--out", str(site)]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_markdown_tables_are_the_result_numbers(tmp_path):
    tables = markdown_tables(small_results(tmp_path / "results"))
    lines = tables["table4"].splitlines()
    assert lines[0] == ("| features | method | bits | paper | ours, `cifar10-dsh` | diff | ours, `cifar10-standard` "
                        "| diff |")
    assert lines[2:] == ["| Hand (GIST) | LSH | 48 | 0.1492 | 0.1462 | -0.0030 | 0.2000 | +0.0508 |",
                         "| Hand (GIST) | KSH | 48 | 0.4167 | 0.3121 | -0.1046 |  |  |"]
    assert tables["table1"].splitlines()[2] == "| regularizer-alpha-0.001 | 0.6195 | 0.600 | 0.500 |"
    assert "missing" in tables["table2"]
    text = "a\n<!-- report:table4 -->\nold\n<!-- /report:table4 -->\nb\n"
    assert replace_blocks(text, {"table4": "new\n"}) == "a\n<!-- report:table4 -->\nnew\n<!-- /report:table4 -->\nb\n"


def test_readme_tables_are_regenerated_from_results():
    """Every table the README shows from results/ is the one `hashbench report --markdown`
    prints; after a rerun changes a CSV: hashbench report --markdown --readme README.md."""
    blocks = readme_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    tables = markdown_tables(RESULTS)
    assert set(blocks) == set(tables) == set(README_TABLES)
    for name in README_TABLES:
        assert blocks[name] == tables[name], (f"README.md's {name} table differs from results/: run "
                                              "`hashbench report --markdown --readme README.md`")


def test_readme_option_rewrites_the_tables(tmp_path, capsys):
    res = small_results(tmp_path / "results")
    readme = tmp_path / "README.md"
    readme.write_text("".join(f"<!-- report:{n} -->\nold\n<!-- /report:{n} -->\n" for n in README_TABLES))
    assert main(["report", "--results", str(res), "--markdown", "--readme", str(readme)]) == 0
    assert readme_blocks(readme.read_text()) == markdown_tables(res)
    readme.write_text("no markers\n")
    assert main(["report", "--results", str(res), "--markdown", "--readme", str(readme)]) == 2
    assert "report:table4" in capsys.readouterr().err


# ----------------------------------------------------------------------------- in a browser

def _chromium(*args, timeout=120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args],
            check=False, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="needs Chromium at /usr/bin/chromium (Debian: apt-get install chromium)")
def test_site_in_a_real_browser(tmp_path):
    """Headless Chromium opens the main pages of the committed results' site from the file
    system and runs their script, which reports what a person sees: tables and their rows,
    images that failed to load, script errors, and whether clicking a header sorts. Then a
    screenshot of the index for the README (results/report-index.png)."""
    site = tmp_path / "site"
    build_site(RESULTS, site)
    pages = check_links(site)
    for name in ["index.html", *(f"{n}.html" for n in EXPERIMENT_PAGES), "leaderboard.html",
                 "search-speed.html", "method-dsh.html", "method-ksh.html"]:
        run = _chromium("--dump-dom", (site / name).as_uri() + "#selftest")
        assert run.returncode == 0, run.stderr[-2000:]
        assert ":CONSOLE" not in run.stderr, f"{name}: console output: {run.stderr[-2000:]}"
        status = run.stdout.split('<pre id="report-status" hidden="">')[1].split("</pre>")[0]
        status = json.loads(html.unescape(status))
        assert status["errors"] == [] and status["broken_images"] == []
        assert status["rows"] == {k: v for k, v in pages[name].rows.items() if k}, name
        assert status["tables"] == len(pages[name].rows)
        assert status["images"] == sum(t.startswith("figures/") for t in pages[name].links)
        assert status["sorted"] is not False, f"{name}: a table did not sort"
    shot = tmp_path / SCREENSHOT
    run = _chromium("--window-size=1280,900", "--hide-scrollbars", f"--screenshot={shot}",
                    (site / "index.html").as_uri())
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    with Image.open(shot) as img:
        assert img.size == (1280, 900)
        top = img.convert("RGB").getpixel((5, 5))
        assert max(top) < 60  # the dark navigation bar was drawn
        assert len(img.convert("L").getcolors(256 * 256)) > 20  # text and tables, not a blank page
    shutil.copyfile(shot, RESULTS / SCREENSHOT)


def test_indented_blocks_keep_their_indent():
    """A generated table inside a list item: its lines carry the markers' indent."""
    text = "- item\n\n  <!-- report:table4 -->\n  | old |\n  <!-- /report:table4 -->\n- next\n"
    assert readme_blocks(text) == {"table4": "| old |\n"}
    new = replace_blocks(text, {"table4": "| a |\n|---|\n"})
    assert new == "- item\n\n  <!-- report:table4 -->\n  | a |\n  |---|\n  <!-- /report:table4 -->\n- next\n"
    assert readme_blocks(new) == {"table4": "| a |\n|---|\n"}


def test_search_speed_tables_from_the_csv(tmp_path):
    """queries/s with recall (* exact) per strategy; a skipped cell says why; absent: said so."""
    res = tmp_path / "results"
    res.mkdir()
    assert "search-speed.csv` is missing" in markdown_tables(res)["search-knn"]
    cols = "codes,n_database,bits,strategy,task,k_or_radius,qps,recall,exact,status\n"
    (res / "search-speed.csv").write_text(
        cols + "random,1000000,32,linear,knn,100,2513.4,1.0,True,ok\n"
        "random,1000000,32,faiss-hash,knn,100,1149.2,0.9712,False,ok\n"
        "random,10000000,64,linear,knn,100,0.4,1.0,True,skipped: 475 s projected for 200 queries (> 120 s)\n"
        "random,1000000,32,mih,radius,2,23982.0,1.0,True,ok\n")
    tables = markdown_tables(res)
    assert tables["search-knn"] == ("| codes | linear | faiss-hash |\n|---|---|---|\n"
                                    "| 1M x 32 | 2,513 (1.00*) | 1,149 (0.97) |\n"
                                    "| 10M x 64 | skipped (475 s projected) |  |\n")
    assert tables["search-radius"] == "| codes | mih |\n|---|---|\n| 1M x 32 | 23,982 (1.00*) |\n"
    (res / "search-speed.csv").write_text("codes,bits\nrandom,32\n")
    with pytest.raises(InputError, match=r"search-speed\.csv: no column"):
        markdown_tables(res)


def test_committed_comparisons_are_the_rows_against_the_paper():
    # NAME-vs-paper.csv is derived from NAME.csv; rows re-run outside reproduce must not leave
    # it stale (scripts/redraw.py comparisons rewrites them)
    from hashbench.paper import comparison_csv

    files = sorted(RESULTS.glob("*-vs-paper.csv"))
    assert files
    for path in files:
        fresh = comparison_csv(path.with_name(path.name.replace("-vs-paper", ""))).splitlines()
        committed = path.read_text().splitlines()
        assert committed[0] == fresh[0] and sorted(committed[1:]) == sorted(fresh[1:]), path.name
