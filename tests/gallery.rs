//! Every spec file in `experiments/` runs by the name it gives, ends `done` with no failed
//! claim, and draws every standard figure: the PNG on disk is what the renderer draws, every
//! panel has data in it, and no legend covers data. The last is checked in pixel space, not
//! by the layout's own arithmetic: a legend's pixels are those that differ between drawing
//! with and without the guides layer; the data's are those the data layer alone draws.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use lab::plot::{Figure, Layers, RgbImage, render_rgb};
use tempfile::TempDir;

fn layers(axes: bool, data: bool, guides: bool) -> Layers {
    Layers { axes, data, guides }
}

fn pixel(image: &RgbImage, x: u32, y: u32) -> [u8; 3] {
    let i = 3 * (y as usize * image.width as usize + x as usize);
    [image.pixels[i], image.pixels[i + 1], image.pixels[i + 2]]
}

/// The cells of a figure's panels: (x0, y0, x1, y1) in pixels, below the figure's title
/// (whatever height the image has above the panels).
fn cells(figure: &Figure, image: &RgbImage) -> Vec<[u32; 4]> {
    let columns = figure.columns.max(1);
    let rows = figure.panels.len().div_ceil(columns) as u32;
    let (w, h) = figure.panel_size;
    let top = image.height - rows * h;
    (0..figure.panels.len())
        .map(|k| {
            let (col, row) = ((k % columns) as u32, (k / columns) as u32);
            [col * w, top + row * h, (col + 1) * w, top + (row + 1) * h]
        })
        .collect()
}

/// Boxes around the pixels where two drawings differ inside a cell, one per run of columns
/// that differ (a legend inside the plot and a colour bar beside it are two boxes).
fn difference_boxes(a: &RgbImage, b: &RgbImage, cell: [u32; 4]) -> Vec<[u32; 4]> {
    let mut boxes: Vec<[u32; 4]> = Vec::new();
    let mut current: Option<[u32; 4]> = None;
    for x in cell[0]..cell[2] {
        let rows: Vec<u32> = (cell[1]..cell[3])
            .filter(|&y| pixel(a, x, y) != pixel(b, x, y))
            .collect();
        match (rows.first(), rows.last(), current.as_mut()) {
            (Some(&y0), Some(&y1), Some(c)) => {
                c[1] = c[1].min(y0);
                c[2] = x;
                c[3] = c[3].max(y1);
            }
            (Some(&y0), Some(&y1), None) => current = Some([x, y0, x, y1]),
            (None, _, Some(_)) => boxes.extend(current.take()),
            _ => {}
        }
    }
    boxes.extend(current);
    boxes
}

/// Checks one figure against its PNG on disk, then [`check_guides`].
fn check_figure(name: &str, figure: &Figure, png: &Path) {
    let full = render_rgb(figure, Layers::ALL).unwrap();
    let decoded = image::open(png)
        .unwrap_or_else(|e| panic!("{}: not a PNG: {e}", png.display()))
        .to_rgb8();
    assert_eq!(
        (decoded.width(), decoded.height()),
        (full.width, full.height),
        "{name}: size"
    );
    assert!(
        decoded.as_raw() == &full.pixels,
        "{name}: the file differs from the figure drawn in memory"
    );
    check_guides(name, figure, &full);
}

/// Every panel has data in it, and no legend or colour bar covers any.
fn check_guides(name: &str, figure: &Figure, full: &RgbImage) {
    let data = render_rgb(figure, layers(false, true, false)).unwrap();
    let no_guides = render_rgb(figure, layers(true, true, false)).unwrap();
    for (k, cell) in cells(figure, full).into_iter().enumerate() {
        let ink = (cell[0]..cell[2])
            .flat_map(|x| (cell[1]..cell[3]).map(move |y| (x, y)))
            .filter(|&(x, y)| pixel(&data, x, y) != [255, 255, 255])
            .count();
        assert!(ink > 50, "{name}: panel {k} draws no data ({ink} pixels)");
        for b in difference_boxes(full, &no_guides, cell) {
            let hidden = (b[0]..=b[2])
                .flat_map(|x| (b[1]..=b[3]).map(move |y| (x, y)))
                .filter(|&(x, y)| pixel(&data, x, y) != [255, 255, 255])
                .count();
            assert_eq!(
                hidden, 0,
                "{name}: panel {k}: the legend or colour bar at {b:?} covers {hidden} data pixels"
            );
        }
    }
}

#[test]
fn every_spec_runs_and_draws_figures_whose_legends_hide_no_data() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = TempDir::new().unwrap();
    let mut specs: Vec<PathBuf> = fs::read_dir(root.join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    specs.sort();
    assert!(specs.len() >= 5);
    let mut figures = 0;
    for spec in specs {
        let name = spec.file_stem().unwrap().to_string_lossy().into_owned();
        let experiment = name.split('-').next().unwrap().to_string();
        // The file names its experiment: `lab run --spec FILE` needs nothing else.
        common::lab_with_data(dir.path())
            .args(["run", "--spec"])
            .arg(&spec)
            .args(["--out", &format!("out/{name}"), "-q"])
            .assert()
            .success();
        let out = dir.path().join("out");
        let manifest: serde_json::Value = serde_json::from_str(
            &fs::read_to_string(out.join(format!("{name}.run.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["status"], "done", "{name}");
        assert_eq!(manifest["experiment"], experiment.as_str(), "{name}");
        // A claim may fail on a spec file only as a recorded finding, and a recorded
        // finding must still fail.
        let findings = lab::experiments::find(&experiment).unwrap().findings();
        let recorded = |id: &str| {
            findings
                .iter()
                .any(|(file, c, _)| *file == name && *c == id)
        };
        let claims = manifest["claims"].as_array().unwrap();
        for claim in claims {
            let id = claim["id"].as_str().unwrap();
            if claim["verdict"] == "fail" {
                assert!(recorded(id), "{name}: {claim}");
            }
        }
        for (_, id, _) in findings.iter().filter(|(file, _, _)| *file == name) {
            assert!(
                claims
                    .iter()
                    .any(|c| c["id"] == *id && c["verdict"] == "fail"),
                "{name}: the recorded finding {id} no longer fails: update the record"
            );
        }
        let csv = out.join(format!("{name}.csv"));
        let standard = lab::commands::standard_figures_of(&[csv]).unwrap();
        assert!(!standard.is_empty(), "{name}: no figure");
        for (suffix, figure) in standard {
            let png = out.join(format!("{name}{suffix}.png"));
            assert!(png.exists(), "{name}: {} was not written", png.display());
            check_figure(&format!("{name}{suffix}"), &figure, &png);
            figures += 1;
        }
    }
    assert!(figures >= 30, "{figures} figures");
}

/// Overlays of a sweep, as `lab plot` draws them: a categorical and a numeric setting (the
/// README's PMD sweep: colours, patterns, bounds in their series' colour, a long legend) and
/// an ordered numeric one (an SVRS sweep over lambda: a colour bar). No guide covers data.
#[test]
fn sweep_overlays_keep_legends_and_colour_bars_off_the_data() {
    let dir = TempDir::new().unwrap();
    let run = |args: &[&str]| {
        common::lab(dir.path())
            .arg("run")
            .args(args)
            .args(["-q", "--format", "png"])
            .assert()
            .success();
    };
    for d in ["euclidean", "kl", "tsallis"] {
        for eta in ["1", "10"] {
            run(&["pmd", "--divergence", d, "--eta", eta, "iterations=60"]);
        }
    }
    for lambda in ["1e-3", "2.5e-4", "5e-5"] {
        run(&[
            "svrs",
            "method=svrs,accsvrs",
            "seeds=2",
            &format!("lambda={lambda}"),
        ]);
    }
    let out = dir.path().join("out");
    let csvs = |prefix: &str| -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with(prefix) && name.ends_with(".csv")
            })
            .collect();
        found.sort();
        found
    };
    for (prefix, runs) in [("pmd-", 6), ("svrs-", 3)] {
        let files = csvs(prefix);
        assert_eq!(files.len(), runs, "{files:?}");
        for (suffix, figure) in lab::commands::standard_figures_of(&files).unwrap() {
            let full = render_rgb(&figure, Layers::ALL).unwrap();
            check_guides(&format!("{prefix}sweep{suffix}"), &figure, &full);
        }
    }
}
