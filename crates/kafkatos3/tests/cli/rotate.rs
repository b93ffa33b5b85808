//! `kafkatos3_rotate`: sealing the in-progress files of a working directory.

use super::*;

/// A working directory with three in-progress files:
/// - `events/0`: records 5..=7, closed cleanly;
/// - `events/1`: a header and no records;
/// - `other-topic/2`: records 10 and 11 synced, then part of record 12 on disk past the write
///   position (a torn tail, as a crash between two syncs leaves it).
struct InProgress {
    _dir: tempfile::TempDir,
    root: PathBuf,
    records_0: Vec<Rec>,
    records_2: Vec<Rec>,
    /// Length of `other-topic/2`'s valid data (its write position).
    synced_len_2: u64,
}

fn inprogress_workdir() -> InProgress {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("work");
    let file = |topic: &str, partition: i32| {
        let path = root.join("inprogress").join(topic).join(partition.to_string()).join("data.mak");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        path
    };

    let records_0 = vec![rec(5, Some(b"k5"), Some(b"v5")), rec(6, None, Some(b"v6")), rec(7, Some(b"k7"), None)];
    write_mak(&file("events", 0), &header("events", 0, 5), &records_0);

    write_mak(&file("events", 1), &header("events", 1, 100), &[]);

    let records_2 = vec![rec(10, Some(b"a"), Some(b"first")), rec(11, Some(b"b"), Some(b"second"))];
    let torn = file("other-topic", 2);
    let mut writer = MakWriter::create(&torn, &header("other-topic", 2, 10)).unwrap();
    for (offset, key, value) in &records_2 {
        writer.append(*offset, key.as_deref(), value.as_deref()).unwrap();
    }
    writer.sync().unwrap();
    let synced_len_2 = writer.len();
    // Larger than the writer's buffer, so it reaches the file, but never synced.
    writer.append(12, Some(b"c"), Some(&vec![b'z'; 200_000])).unwrap();
    drop(writer);
    let on_disk = fs::metadata(&torn).unwrap().len();
    assert!(on_disk > synced_len_2, "the test needs a torn tail: {on_disk} <= {synced_len_2}");

    InProgress { _dir: dir, root, records_0, records_2, synced_len_2 }
}

fn as_read(records: &[Rec]) -> Vec<ReadRec> {
    records
        .iter()
        .map(|(offset, key, value)| (*offset, key.clone().unwrap_or_default(), value.clone().unwrap_or_default()))
        .collect()
}

#[test]
fn rotate_seals_files_with_records_cuts_torn_tails_and_skips_empty_files() {
    let work = inprogress_workdir();
    let root = &work.root;
    let empty_before = fs::read(root.join("inprogress/events/1/data.mak")).unwrap();

    let date_before = today_yymmdd();
    let out = run(ROTATE, [root]);
    let date_after = today_yymmdd();
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stderr, "");

    // Sealed under the original's name: <topic>-<partition>_<start>-<end>_<yymmdd>.mak.
    let sealed = |topic: &str, partition: i32, start: i64, end: i64| {
        let dir = root.join("tocompress").join(topic).join(partition.to_string());
        [&date_before, &date_after]
            .into_iter()
            .map(|date| dir.join(format!("{topic}-{partition}_{start}-{end}_{date}.mak")))
            .find(|path| path.exists())
            .unwrap_or_else(|| {
                panic!(
                    "no {topic}-{partition}_{start}-{end}_<yymmdd>.mak in {}: {:?}",
                    dir.display(),
                    fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
                )
            })
    };
    let sealed_0 = sealed("events", 0, 5, 7);
    let sealed_2 = sealed("other-topic", 2, 10, 11);

    let (header_0, records_0) = read_records(&sealed_0);
    assert_eq!(header_0, header("events", 0, 5));
    assert_eq!(records_0, as_read(&work.records_0));

    let (header_2, records_2) = read_records(&sealed_2);
    assert_eq!(header_2, header("other-topic", 2, 10));
    assert_eq!(records_2, as_read(&work.records_2), "record 12 was torn");
    assert_eq!(fs::metadata(&sealed_2).unwrap().len(), work.synced_len_2, "the torn tail is cut");

    // Sealed files leave inprogress/; the empty one stays, untouched.
    assert!(!root.join("inprogress/events/0/data.mak").exists());
    assert!(!root.join("inprogress/other-topic/2/data.mak").exists());
    assert_eq!(fs::read(root.join("inprogress/events/1/data.mak")).unwrap(), empty_before);
    assert!(!root.join("tocompress/events/1").exists());

    let stem = |path: &Path| path.file_name().unwrap().to_str().unwrap().to_owned();
    let expected = format!(
        "sealed {} -> tocompress/events/0/{} ({} bytes)\n\
         skipping events:1: no records\n\
         sealed {} -> tocompress/other-topic/2/{} ({} bytes)\n",
        root.join("inprogress/events/0/data.mak").display(),
        stem(&sealed_0),
        fs::metadata(&sealed_0).unwrap().len(),
        root.join("inprogress/other-topic/2/data.mak").display(),
        stem(&sealed_2),
        work.synced_len_2,
    );
    assert_eq!(out.stdout, expected);
}

#[test]
fn rotate_run_twice_seals_nothing_the_second_time() {
    let work = inprogress_workdir();
    let first = run(ROTATE, [&work.root]);
    assert_eq!(first.code(), Some(0), "{first:?}");
    let before = snapshot(&work.root);
    let second = run(ROTATE, [&work.root]);
    assert_eq!(second.code(), Some(0), "{second:?}");
    assert_eq!(second.stdout, "skipping events:1: no records\n");
    let mut after = snapshot(&work.root);
    // The lock file holds the pid of whichever process took the lock last.
    after.insert(PathBuf::from(".kafkatos3.lock"), before[Path::new(".kafkatos3.lock")].clone());
    assert_eq!(after, before);
}

#[test]
fn rotate_refuses_a_locked_working_directory_and_changes_nothing() {
    let work = inprogress_workdir();
    // Held by this (test) process, as a running daemon would hold it.
    let lock = kafkatos3::local::lock::lock_working_directory(&WorkDir::new(&work.root))
        .expect("take the working directory lock");
    let before = snapshot(&work.root);

    let out = run(ROTATE, [&work.root]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, "");
    let line = out.stderr_line();
    assert!(line.starts_with("kafkatos3_rotate: "), "{line}");
    assert!(line.contains("locked"), "{line}");
    assert!(line.contains(&format!("(pid {})", std::process::id())), "names the holder: {line}");
    assert_eq!(snapshot(&work.root), before, "nothing may change");
    drop(lock);

    // Once released, the same directory rotates.
    let out = run(ROTATE, [&work.root]);
    assert_eq!(out.code(), Some(0), "{out:?}");
}
