//! mediabackup, mediarestore and listbackups --media end to end: the built
//! binary driving the real rclone against a local folder remote and
//! `rclone serve webdav` on 127.0.0.1.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Remote, World};

/// A world whose config points media_root at `<scratch>/media`.
fn media_world(remote: Remote, extra: &[&str]) -> World {
    let mut w = World::new(remote);
    let root = w.path("media");
    std::fs::create_dir_all(&root).unwrap();
    w.setting(&format!("media_root = \"{}\"", root.display()));
    for line in extra {
        w.setting(line);
    }
    w
}

fn root(w: &World) -> PathBuf {
    w.path("media")
}

fn write(w: &World, rel: &str, text: &str) {
    let p = root(w).join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Every file below `dir` with its contents, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn mirror(w: &World) -> BTreeMap<String, String> {
    tree(&w.store.join("media"))
}

/// The version folders in the store, each with its files.
fn version_folders(w: &World) -> BTreeMap<String, BTreeMap<String, String>> {
    let dir = w.store.join("media-versions");
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                tree(&e.path()),
            )
        })
        .collect()
}

fn incremental(remote: Remote) {
    let w = media_world(remote, &[]);
    write(&w, "a.txt", "alpha");
    write(&w, "sub/b.txt", "bravo");
    write(&w, "c.txt", "charlie");
    let first = w.ok(&["mediabackup"]);
    assert!(
        first.stderr.contains("3 new, 0 replaced, 0 deleted"),
        "{}",
        first.stderr
    );
    assert_eq!(mirror(&w), tree(&root(&w)));

    write(&w, "a.txt", "alpha, second edition");
    write(&w, "d.txt", "delta");
    let preview = w.ok(&["mediabackup", "--dry-run"]);
    assert_eq!(
        preview.stdout, "new      d.txt\nreplace  a.txt\n",
        "{}",
        preview.stderr
    );
    assert_eq!(
        mirror(&w)["a.txt"],
        "alpha",
        "the dry run changed the mirror"
    );

    let second = w.ok(&["mediabackup"]);
    assert!(
        second.stderr.contains("1 new, 1 replaced, 0 deleted"),
        "{}",
        second.stderr
    );
    assert_eq!(mirror(&w), tree(&root(&w)));
    // Only the replaced file travelled into the version folder, with its old content.
    let versions = version_folders(&w);
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(
        versions.values().next().unwrap(),
        &files(&[("a.txt", "alpha")])
    );

    let third = w.ok(&["mediabackup"]);
    assert!(
        third.stderr.contains("0 new, 0 replaced, 0 deleted"),
        "{}",
        third.stderr
    );
}

#[test]
fn incremental_backup_copies_only_what_changed_local() {
    incremental(Remote::Local);
}

#[test]
fn incremental_backup_copies_only_what_changed_webdav() {
    incremental(Remote::Webdav);
}

#[test]
fn empty_missing_or_unset_media_root_is_refused_and_remote_intact() {
    let w = media_world(Remote::Local, &[]);
    write(&w, "a.txt", "alpha");
    write(&w, "sub/b.txt", "bravo");
    w.ok(&["mediabackup"]);
    let before = mirror(&w);

    std::fs::remove_file(root(&w).join("a.txt")).unwrap();
    std::fs::remove_file(root(&w).join("sub/b.txt")).unwrap();
    let empty = w.run(&["mediabackup"]);
    assert_eq!(empty.code, 1, "{}", empty.stderr);
    assert!(
        empty.stderr.contains("is empty") && empty.stderr.contains("--allow-empty"),
        "{}",
        empty.stderr
    );
    assert_eq!(mirror(&w), before);

    std::fs::remove_dir_all(root(&w)).unwrap();
    let missing = w.run(&["mediabackup"]);
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("does not exist"),
        "{}",
        missing.stderr
    );
    assert_eq!(mirror(&w), before);

    std::fs::write(root(&w), "a file, not a folder").unwrap();
    let not_dir = w.run(&["mediabackup"]);
    assert_eq!(not_dir.code, 2, "{}", not_dir.stderr);
    assert_eq!(mirror(&w), before);
    std::fs::remove_file(root(&w)).unwrap();

    let mut unset = World::new(Remote::Local);
    unset.setting("db_cleanup_keep = 3");
    let r = unset.run(&["mediabackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("media_root is not set"), "{}", r.stderr);

    // Insisting empties the mirror, but the files stay in a version folder.
    std::fs::create_dir_all(root(&w)).unwrap();
    w.ok(&["mediabackup", "--allow-empty"]);
    assert!(mirror(&w).is_empty());
    let versions = version_folders(&w);
    assert_eq!(versions.values().next().unwrap(), &before);
}

fn point_in_time(remote: Remote) {
    let w = media_world(remote, &[]);
    let pause = || std::thread::sleep(std::time::Duration::from_millis(20));
    let now = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    write(&w, "doc.txt", "v1");
    write(&w, "keep.txt", "stays");
    let before_any = now();
    pause();
    w.ok(&["mediabackup"]);
    pause();
    let t1 = now();
    pause();
    write(&w, "doc.txt", "version two");
    w.ok(&["mediabackup"]);
    pause();
    let t2 = now();
    pause();
    std::fs::remove_file(root(&w).join("doc.txt")).unwrap();
    write(&w, "new.txt", "born after t2");
    w.ok(&["mediabackup"]);
    pause();
    let t3 = now();

    // Local edits after the last backup, which a --mirror restore discards.
    write(&w, "scratch.txt", "not backed up");
    let expect = [
        (&t1, files(&[("doc.txt", "v1"), ("keep.txt", "stays")])),
        (
            &t2,
            files(&[("doc.txt", "version two"), ("keep.txt", "stays")]),
        ),
        (
            &t3,
            files(&[("keep.txt", "stays"), ("new.txt", "born after t2")]),
        ),
        (&t1, files(&[("doc.txt", "v1"), ("keep.txt", "stays")])),
    ];
    for (at, want) in expect {
        let r = w.ok(&["mediarestore", "--noinput", "--mirror", "--at", at]);
        assert_eq!(tree(&root(&w)), want, "--at {at}: {}", r.stderr);
    }
    // Without --mirror, --at brings files back and deletes nothing.
    write(&w, "scratch.txt", "kept");
    w.ok(&["mediarestore", "--noinput", "--at", &t3]);
    let got = tree(&root(&w));
    assert_eq!(got["new.txt"], "born after t2");
    assert_eq!(got["doc.txt"], "v1", "a file the backup lacks must stay");
    assert_eq!(got["scratch.txt"], "kept");

    let early = w.run(&["mediarestore", "--noinput", "--at", &before_any]);
    assert_eq!(early.code, 1, "{}", early.stderr);
    assert!(
        early.stderr.contains("oldest restorable backup"),
        "{}",
        early.stderr
    );

    let listed = w.ok(&["listbackups", "--media", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(v["files"], 2);
    let backups = v["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 3, "{v}");
    assert!(backups.iter().all(|b| b["restorable"] == true));
    // Backup 2 kept v1 of doc.txt, backup 3 kept "version two".
    assert_eq!(backups[1]["version_size"], 2);
    assert_eq!(backups[2]["version_size"], 11);
}

#[test]
fn a_file_changed_then_deleted_is_recoverable_at_each_step_local() {
    point_in_time(Remote::Local);
}

#[test]
fn a_file_changed_then_deleted_is_recoverable_at_each_step_webdav() {
    point_in_time(Remote::Webdav);
}

#[test]
fn default_restore_keeps_local_files_and_mirror_asks_then_deletes() {
    let w = media_world(Remote::Local, &[]);
    write(&w, "a.txt", "alpha");
    write(&w, "sub/b.txt", "bravo");
    w.ok(&["mediabackup"]);
    write(&w, "a.txt", "alpha, edited locally");
    std::fs::remove_file(root(&w).join("sub/b.txt")).unwrap();
    write(&w, "extra/only-local.txt", "local");

    // No terminal and no --noinput: refused, nothing touched.
    let asked = w.run(&["mediarestore"]);
    assert_eq!(asked.code, 3, "{}", asked.stderr);
    assert_eq!(tree(&root(&w))["a.txt"], "alpha, edited locally");

    let r = w.ok(&["mediarestore", "--noinput"]);
    assert!(
        r.stderr
            .contains("1 local files that the backup lacks are kept"),
        "{}",
        r.stderr
    );
    assert_eq!(
        tree(&root(&w)),
        files(&[
            ("a.txt", "alpha"),
            ("sub/b.txt", "bravo"),
            ("extra/only-local.txt", "local")
        ])
    );

    let preview = w.ok(&["mediarestore", "--mirror", "--dry-run"]);
    assert_eq!(preview.stdout, "delete   extra/only-local.txt\n");
    assert!(
        preview
            .stderr
            .contains("--mirror deletes these 1 local files"),
        "{}",
        preview.stderr
    );
    assert!(root(&w).join("extra/only-local.txt").exists());
    let asked = w.run(&["mediarestore", "--mirror"]);
    assert_eq!(asked.code, 3, "{}", asked.stderr);
    assert!(
        asked.stderr.contains("extra/only-local.txt"),
        "the deletions are shown first: {}",
        asked.stderr
    );
    assert!(root(&w).join("extra/only-local.txt").exists());

    w.ok(&["mediarestore", "--mirror", "--noinput"]);
    assert_eq!(
        tree(&root(&w)),
        files(&[("a.txt", "alpha"), ("sub/b.txt", "bravo")])
    );
    assert!(
        !root(&w).join("extra").exists(),
        "the emptied folder is removed too"
    );
}

#[test]
fn max_delete_guard_stops_the_sync_and_versions_what_it_deleted() {
    let w = media_world(Remote::Local, &["media_max_delete = 1"]);
    for n in ["1", "2", "3"] {
        write(&w, &format!("f{n}.txt"), n);
    }
    w.ok(&["mediabackup"]);
    std::fs::remove_file(root(&w).join("f1.txt")).unwrap();
    std::fs::remove_file(root(&w).join("f2.txt")).unwrap();
    let preview = w.run(&["mediabackup", "--dry-run"]);
    assert_eq!(preview.code, 1, "{}", preview.stderr);
    assert!(
        preview
            .stderr
            .contains("a real run would be stopped by the media_max_delete guard"),
        "{}",
        preview.stderr
    );
    assert_eq!(mirror(&w).len(), 3, "the dry run deleted");
    let r = w.run(&["mediabackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("stopped by the media_max_delete guard"),
        "{}",
        r.stderr
    );
    // rclone removes up to the limit, then stops; what it removed is in the version folder.
    assert_eq!(mirror(&w).len(), 2, "{:?}", mirror(&w));
    let moved: usize = version_folders(&w).values().map(|f| f.len()).sum();
    assert_eq!(moved, 1);
    // The one file the sync deleted is the one kept, with its content.
    let kept: BTreeMap<String, String> = version_folders(&w).into_values().flatten().collect();
    let gone: Vec<String> = ["f1.txt", "f2.txt", "f3.txt"]
        .iter()
        .filter(|f| !mirror(&w).contains_key(**f))
        .map(|f| f.to_string())
        .collect();
    assert_eq!(gone.len(), 1, "{:?}", mirror(&w));
    assert_eq!(
        kept.get(&gone[0]).map(String::as_str),
        Some(&gone[0][1..2]),
        "{kept:?}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&w.ok(&["listbackups", "--media", "--json"]).stdout).unwrap();
    let rows = v["backups"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    assert_eq!(rows[1]["version_files"], 1, "{v}");
    assert_eq!(
        rows[1]["complete"], false,
        "the stopped run wrote no file list: {v}"
    );
    // One deletion is within the limit.
    write(&w, "f2.txt", "2");
    w.ok(&["mediabackup"]);
    assert_eq!(mirror(&w), tree(&root(&w)));
}

#[test]
fn versions_keep_prunes_old_backups_and_versions_off_breaks_the_chain() {
    let mut w = media_world(Remote::Local, &["media_versions_keep = 2"]);
    let mut stamps = Vec::new();
    for n in 1..=3 {
        write(&w, "doc.txt", &"x".repeat(n));
        w.ok(&["mediabackup"]);
        std::thread::sleep(std::time::Duration::from_millis(20));
        stamps.push(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    let v: serde_json::Value =
        serde_json::from_str(&w.ok(&["listbackups", "--media", "--json"]).stdout).unwrap();
    assert_eq!(v["backups"].as_array().unwrap().len(), 2, "{v}");
    let gone = w.run(&["mediarestore", "--noinput", "--at", &stamps[0]]);
    assert_eq!(gone.code, 1, "{}", gone.stderr);
    w.ok(&["mediarestore", "--noinput", "--at", &stamps[1]]);
    assert_eq!(tree(&root(&w))["doc.txt"], "xx");

    w.setting("media_versions = false");
    write(&w, "doc.txt", "xxxx");
    w.ok(&["mediabackup"]);
    let broken = w.run(&["mediarestore", "--noinput", "--at", &stamps[2]]);
    assert_eq!(broken.code, 1, "{}", broken.stderr);
    assert!(
        broken.stderr.contains("media_versions = false"),
        "{}",
        broken.stderr
    );
}

#[test]
fn bad_media_settings_name_the_key() {
    for (line, key) in [
        ("media_versions_keep = \"30 days\"", "media_versions_keep"),
        ("media_versions_keep = 0", "media_versions_keep"),
        ("media_max_delete = -5", "media_max_delete"),
        ("media_backup_dir = \"db\"", "media_backup_dir"),
    ] {
        let w = media_world(Remote::Local, &[line]);
        let r = w.run(&["mediabackup"]);
        assert_eq!(r.code, 2, "{line}: {}", r.stderr);
        assert!(r.stderr.contains(key), "{line}: {}", r.stderr);
    }
}

#[test]
fn restore_onto_a_new_machine_recreates_the_folder_webdav() {
    let w = media_world(Remote::Webdav, &[]);
    write(&w, "a.txt", "alpha");
    write(&w, "deep/er/b.txt", "bravo");
    let original = tree(&root(&w));
    w.ok(&["mediabackup"]);
    std::fs::remove_dir_all(root(&w)).unwrap();
    let r = w.ok(&["mediarestore", "--noinput"]);
    assert!(r.stderr.contains("2 new"), "{}", r.stderr);
    assert_eq!(tree(&root(&w)), original);
}

#[test]
fn restore_without_any_backup_says_so() {
    let w = media_world(Remote::Local, &[]);
    let r = w.run(&["mediarestore", "--noinput"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no media backup"), "{}", r.stderr);
    let at = w.run(&["mediarestore", "--noinput", "--at", "yesterday"]);
    assert_eq!(at.code, 2, "{}", at.stderr);
    assert!(at.stderr.contains("--at `yesterday`"), "{}", at.stderr);
}

/// On a terminal, --mirror lists what it deletes, then asks; only "y" goes on.
#[test]
fn mirror_restore_asks_on_a_terminal_after_listing_deletions() {
    let w = media_world(Remote::Local, &[]);
    write(&w, "a.txt", "alpha");
    w.ok(&["mediabackup"]);
    write(&w, "stray.txt", "local only");
    for answer in ["n\n", "\n"] {
        let r = w.run_on_terminal("mediarestore --mirror", answer);
        assert_eq!(r.code, 3, "answer {answer:?}: {}", r.stdout);
        let listed = r.stdout.find("stray.txt").expect("deletions listed");
        let asked = r
            .stdout
            .find("and delete 1 local files? [y/N]")
            .expect("asked");
        assert!(listed < asked, "{}", r.stdout);
        assert!(root(&w).join("stray.txt").exists());
    }
    let r = w.run_on_terminal("mediarestore --mirror", "y\n");
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(tree(&root(&w)), files(&[("a.txt", "alpha")]));
}

// ---- file names rclone encodes ---------------------------------------------

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Every file below `dir` with its bytes, by the exact bytes of its
/// relative path.
fn raw_tree(dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p
                    .strip_prefix(base)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn write_raw(w: &World, rel: &[u8], content: &[u8]) {
    let p = root(w).join(OsStr::from_bytes(rel));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// Names that rclone stores encoded, or that a careless comparison mixes up:
/// control characters, invalid UTF-8, edge spaces, rclone's quote character
/// `‛` (doubled: rclone 1.60 cannot read a lone one, see
/// `a_name_rclone_cannot_read_is_refused_naming_the_file`), both Unicode
/// normalisation forms of one name side by side, a C1 control character,
/// and a name built to forge a second output line.
const ODD: &[&[u8]] = &[
    b"new\nline.txt",
    b"tab\there.txt",
    b"bad\xff.txt",
    b" leading.txt",
    b"trailing.txt ",
    "quote‛‛twice.txt".as_bytes(),
    "caf\u{e9}.txt".as_bytes(),
    "cafe\u{301}.txt".as_bytes(),
    "nel\u{85}c1.txt".as_bytes(),
    b"x\nnew      forged.txt",
    b"dir\twith\ntab/inner\x7f.txt",
    b"plain.txt",
];

fn content(i: usize) -> Vec<u8> {
    format!("content {i}\0\x01\n").into_bytes()
}

fn odd_names_round_trip(remote: Remote) {
    let w = media_world(remote, &[]);
    for (i, name) in ODD.iter().enumerate() {
        write_raw(&w, name, &content(i));
    }
    let original = raw_tree(&root(&w));
    assert_eq!(original.len(), ODD.len());
    let r = w.ok(&["mediabackup"]);
    assert!(
        r.stderr.contains(&format!("{} new, 0 replaced", ODD.len())),
        "every file is backed up: {}",
        r.stderr
    );
    let t1 = {
        std::thread::sleep(std::time::Duration::from_millis(20));
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    // Nothing changed, so a dry run has nothing to say.
    let again = w.ok(&["mediabackup", "--dry-run"]);
    assert_eq!(again.stdout, "", "{}", again.stderr);

    // The restore compares the backup's names with the local ones: with
    // nothing changed, it deletes and replaces nothing.
    let same = w.ok(&["mediarestore", "--mirror", "--dry-run"]);
    assert_eq!(same.stdout, "", "{}", same.stderr);
    w.ok(&["mediarestore", "--mirror", "--noinput"]);
    assert_eq!(
        raw_tree(&root(&w)),
        original,
        "a no-op restore changed files"
    );

    // One odd file changed locally and one odd local-only file: the dry run
    // prints each on one line, control characters escaped.
    write_raw(&w, b"new\nline.txt", b"edited locally");
    write_raw(&w, b"stray\nnew      evil.txt", b"local only");
    let preview = w.ok(&["mediarestore", "--mirror", "--dry-run"]);
    assert_eq!(
        preview.stdout, "replace  new\u{240a}line.txt\ndelete   stray\u{240a}new      evil.txt\n",
        "{}",
        preview.stderr
    );
    assert_eq!(
        preview
            .stderr
            .lines()
            .filter(|l| l.contains("evil"))
            .count(),
        1,
        "{}",
        preview.stderr
    );
    w.ok(&["mediarestore", "--mirror", "--noinput"]);
    assert_eq!(raw_tree(&root(&w)), original);

    // A second backup changes and deletes odd files; --at brings back the first.
    write_raw(&w, b"tab\there.txt", b"second edition");
    std::fs::remove_file(root(&w).join(OsStr::from_bytes(b"bad\xff.txt"))).unwrap();
    std::fs::remove_file(root(&w).join("cafe\u{301}.txt")).unwrap();
    let dry = w.ok(&["mediabackup", "--dry-run"]);
    assert_eq!(
        dry.stdout,
        "replace  tab\u{2409}here.txt\ndelete   bad\u{2039}FF.txt\ndelete   cafe\u{301}.txt\n"
            .replace('\u{2039}', "\u{201b}"),
        "{}",
        dry.stderr
    );
    w.ok(&["mediabackup"]);
    let second = raw_tree(&root(&w));
    w.ok(&["mediarestore", "--mirror", "--noinput", "--at", &t1]);
    assert_eq!(raw_tree(&root(&w)), original, "--at {t1}");
    w.ok(&["mediarestore", "--mirror", "--noinput"]);
    assert_eq!(raw_tree(&root(&w)), second);
}

#[test]
fn odd_names_survive_backup_restore_and_at_local() {
    odd_names_round_trip(Remote::Local);
}

#[test]
fn odd_names_survive_backup_restore_and_at_webdav() {
    odd_names_round_trip(Remote::Webdav);
}

#[test]
fn odd_names_survive_backup_restore_and_at_crypt() {
    odd_names_round_trip(Remote::Crypt);
}

/// On a local remote the mirror holds every name byte for byte.
#[test]
fn odd_names_are_stored_byte_for_byte_local() {
    let w = media_world(Remote::Local, &[]);
    for (i, name) in ODD.iter().enumerate() {
        write_raw(&w, name, &content(i));
    }
    // One line per file, whatever its name holds: a line break is `␊`, a
    // C1 control is escaped, an invalid byte is `‛FF`.
    let preview = w.ok(&["mediabackup", "--dry-run"]);
    let lines: Vec<&str> = preview.stdout.lines().collect();
    assert_eq!(lines.len(), ODD.len(), "{}", preview.stdout);
    assert!(
        lines.iter().all(|l| l.starts_with("new      ")),
        "{}",
        preview.stdout
    );
    for shown in [
        "new      x\u{240a}new      forged.txt",
        "new      nel\\u{85}c1.txt",
        "new      bad\u{201b}FF.txt",
        "new      dir\u{2409}with\u{240a}tab/inner\u{2421}.txt",
    ] {
        assert!(lines.contains(&shown), "{shown:?} in {}", preview.stdout);
    }
    assert!(!preview.stdout.contains('\u{85}'), "{}", preview.stdout);
    w.ok(&["mediabackup"]);
    assert_eq!(raw_tree(&w.store.join("media")), raw_tree(&root(&w)));
    let v: serde_json::Value =
        serde_json::from_str(&w.ok(&["listbackups", "--media", "--json"]).stdout).unwrap();
    assert_eq!(v["files"], ODD.len(), "{v}");
}

/// rclone 1.60's local backend cannot open a file whose name holds a lone
/// `‛` (it reads `it‛s` as `it‛‛s`): the backup is refused before anything
/// is copied, naming the file, instead of failing half-way.
#[test]
fn a_name_rclone_cannot_read_is_refused_naming_the_file() {
    let w = media_world(Remote::Local, &[]);
    write(&w, "ok.txt", "fine");
    write(&w, "sub/it\u{201b}s.txt", "quote");
    for args in [&["mediabackup", "--dry-run"][..], &["mediabackup"][..]] {
        let r = w.run(args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("sub/it\u{201b}s.txt") && r.stderr.contains("rename"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("nothing was changed"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(mirror(&w).is_empty(), "{args:?}: {:?}", mirror(&w));
    }
    // A local file with such a name is never deleted by a default restore,
    // and --mirror lists it before deleting it.
    std::fs::remove_file(root(&w).join("sub/it\u{201b}s.txt")).unwrap();
    w.ok(&["mediabackup"]);
    write(&w, "sub/it\u{201b}s.txt", "quote");
    w.ok(&["mediarestore", "--noinput"]);
    assert!(root(&w).join("sub/it\u{201b}s.txt").exists());
    let preview = w.ok(&["mediarestore", "--mirror", "--dry-run"]);
    assert_eq!(
        preview.stdout, "delete   sub/it\u{201b}s.txt\n",
        "{}",
        preview.stderr
    );
}

/// A file that rclone leaves out of the mirror (here through a filter on
/// the sync; a remote that folds two names into one does the same) is
/// named in a warning, not passed over in silence.
#[test]
fn a_file_left_out_of_the_mirror_is_named() {
    // A filter in rclone_flags is refused (it would hide backups from every
    // listing), so the sync alone is given one, by a wrapper around rclone.
    let mut w = media_world(Remote::Local, &[]);
    w.wrap_tool(
        "rclone",
        r#"if [ "$1" = sync ]; then exec "$REAL" "$@" --exclude 'skip*'; fi; exec "$REAL" "$@""#,
    );
    write(&w, "kept.txt", "k");
    write(&w, "sub/skip\tme.txt", "s");
    let r = w.ok(&["mediabackup"]);
    assert!(
        r.stderr.contains("1 file(s) of media_root are not in")
            && r.stderr.contains("sub/skip\u{2409}me.txt"),
        "{}",
        r.stderr
    );
    assert_eq!(mirror(&w), files(&[("kept.txt", "k")]));
}
