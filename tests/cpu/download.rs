//! `--download` against a local HTTP server on 127.0.0.1 that serves files
//! generated here: good files land verified, and a corrupt, truncated,
//! mis-sized or missing file is an error that leaves nothing behind.
//!
//! The server is a std `TcpListener` thread that answers at most a given
//! number of requests and stops by itself after a few seconds either way.

use crate::data_util::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wgpu_train::data::{self, Format};
use wgpu_train::lab::download::{self, Remote, RemoteFile, sha256_hex};

#[derive(Clone)]
enum Reply {
    /// 200 with these bytes.
    Body(Vec<u8>),
    /// 200 announcing `len` bytes, sending these, then closing early.
    Cut { bytes: Vec<u8>, len: usize },
}

struct Server {
    base: String,
    thread: Option<JoinHandle<usize>>,
}

impl Server {
    /// Serves `files` by path (e.g. "/a.gz"); anything else is a 404.
    /// Stops after `max_requests` requests or 20 seconds.
    fn start(files: HashMap<String, Reply>, max_requests: usize) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let base = format!("http://{}/", listener.local_addr().expect("addr"));
        listener.set_nonblocking(true).expect("nonblocking");
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut served = 0;
            while served < max_requests && Instant::now() < deadline {
                let (mut stream, _) = match listener.accept() {
                    Ok(c) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                served += 1;
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
                let _ = match files.get(&path) {
                    Some(Reply::Body(b)) => write_reply(&mut stream, "200 OK", b.len(), b),
                    Some(Reply::Cut { bytes, len }) => {
                        write_reply(&mut stream, "200 OK", *len, bytes)
                    }
                    None => write_reply(&mut stream, "404 Not Found", 9, b"not found"),
                };
            }
            served
        });
        Server {
            base,
            thread: Some(thread),
        }
    }

    /// Waits for the server to stop; returns how many requests it served.
    fn requests(mut self) -> usize {
        self.thread
            .take()
            .map(|t| t.join().expect("server thread"))
            .unwrap_or(0)
    }
}

fn write_reply(s: &mut impl Write, status: &str, len: usize, body: &[u8]) -> std::io::Result<()> {
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    )?;
    s.write_all(body)?;
    s.flush()
}

fn files_of(pairs: &[(&str, Vec<u8>)]) -> (HashMap<String, Reply>, Vec<RemoteFile>) {
    let served = pairs
        .iter()
        .map(|(n, b)| (format!("/{n}"), Reply::Body(b.clone())))
        .collect();
    let manifest = pairs
        .iter()
        .map(|(n, b)| RemoteFile::new(n, b.len() as u64, &sha256_hex(b)))
        .collect();
    (served, manifest)
}

fn idx_set(train: u32, test: u32) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "train-images-idx3-ubyte.gz",
            gzip(&idx_images(train, 28, 28)),
        ),
        (
            "train-labels-idx1-ubyte.gz",
            gzip(&idx_labels(&cyclic_labels(train as usize))),
        ),
        ("t10k-images-idx3-ubyte.gz", gzip(&idx_images(test, 28, 28))),
        (
            "t10k-labels-idx1-ubyte.gz",
            gzip(&idx_labels(&cyclic_labels(test as usize))),
        ),
    ]
}

#[test]
fn verified_files_land_and_a_second_run_fetches_nothing() {
    let (served, manifest) = files_of(&idx_set(30, 10));
    let server = Server::start(served, 4);
    let s = Scratch::new("dl-good");
    let paths = download::fetch_files(&server.base, s.path(), &manifest).unwrap();
    assert_eq!(paths.len(), 4);
    assert_eq!(server.requests(), 4);
    // Only the four files: no temporary file left.
    assert_eq!(
        s.listing(),
        [
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz"
        ]
    );
    let splits = data::load(Some(s.path())).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (30, 10));
    // The server has stopped: this succeeds only because nothing is fetched.
    download::fetch_files("http://127.0.0.1:9/", s.path(), &manifest).unwrap();
}

#[test]
fn corrupt_file_is_rejected_and_nothing_is_left() {
    let good = gzip(&idx_labels(&[1, 2, 3]));
    let mut corrupt = good.clone();
    corrupt[20] ^= 1;
    let manifest = vec![RemoteFile::new(
        "labels.gz",
        good.len() as u64,
        &sha256_hex(&good),
    )];
    let server = Server::start(
        HashMap::from([("/labels.gz".to_string(), Reply::Body(corrupt))]),
        1,
    );
    let s = Scratch::new("dl-corrupt");
    let e = download::fetch_files(&server.base, s.path(), &manifest).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("SHA-256 mismatch") && msg.contains("labels.gz"),
        "{msg}"
    );
    assert_eq!(server.requests(), 1);
    assert!(s.listing().is_empty(), "left behind: {:?}", s.listing());
}

#[test]
fn truncated_transfer_wrong_size_and_404_leave_nothing() {
    let good = vec![7u8; 100_000];
    let sha = sha256_hex(&good);
    let served = HashMap::from([
        (
            "/cut.bin".to_string(),
            Reply::Cut {
                bytes: good[..40_000].to_vec(),
                len: good.len(),
            },
        ),
        (
            "/short.bin".to_string(),
            Reply::Body(good[..99_999].to_vec()),
        ),
    ]);
    let server = Server::start(served, 3);
    let s = Scratch::new("dl-cut");
    for (name, expect) in [
        ("cut.bin", "download of"),
        ("short.bin", "announces 99999 bytes, expected 100000"),
        ("missing.bin", "404"),
    ] {
        let f = RemoteFile::new(name, good.len() as u64, &sha);
        let msg = download::fetch_files(&server.base, s.path(), &[f])
            .unwrap_err()
            .to_string();
        assert!(msg.contains(expect) && msg.contains(name), "{name}: {msg}");
        assert!(s.listing().is_empty(), "{name} left: {:?}", s.listing());
    }
    assert_eq!(server.requests(), 3);
}

#[test]
fn download_with_a_base_url_override_checks_the_real_checksums() {
    // A mirror serving files that are not the published Fashion-MNIST: the
    // pinned SHA-256 (and size) must refuse the first one.
    let served = idx_set(3, 3)
        .into_iter()
        .map(|(n, b)| (format!("/{n}"), Reply::Body(b)))
        .collect();
    let server = Server::start(served, 1);
    let s = Scratch::new("dl-override");
    let msg = download::download(Remote::FashionMnist, s.path(), Some(&server.base))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(&server.base) && msg.contains("expected 26421880"),
        "{msg}"
    );
    assert_eq!(server.requests(), 1);
    assert!(s.listing().is_empty(), "left behind: {:?}", s.listing());
}

#[test]
fn cifar_archive_is_fetched_and_extracted_safely() {
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, bytes).expect("tar append");
    };
    add("cifar-10-batches-bin/batches.meta.txt", b"airplane\n");
    for (name, bytes) in cifar_files(3) {
        add(&format!("cifar-10-batches-bin/{name}"), &bytes);
    }
    add("cifar-10-batches-bin/readme.html", b"<html></html>");
    let archive = gzip(&tar.into_inner().expect("tar"));
    let (served, manifest) = files_of(&[(download::CIFAR_ARCHIVE, archive)]);
    let server = Server::start(served, 1);
    let s = Scratch::new("dl-cifar");
    let paths = download::fetch_files(&server.base, s.path(), &manifest).unwrap();
    let out = download::extract_cifar(&paths[0], s.path()).unwrap();
    assert_eq!(server.requests(), 1);
    assert_eq!(out, s.path().join("cifar-10-batches-bin"));
    let mut listing = s.listing();
    listing.retain(|p| p.starts_with("cifar-10-batches-bin/"));
    assert_eq!(listing.len(), 6, "only the six batches: {listing:?}");
    let splits = data::load(Some(s.path())).unwrap();
    assert_eq!(splits.format, Format::Cifar10);
    assert_eq!((splits.train.len(), splits.test.len()), (15, 3));
}

#[test]
fn cifar_archive_missing_batches_is_an_error() {
    let mut tar = tar::Builder::new(Vec::new());
    let bytes = cifar_batch(&[1], 0);
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "cifar-10-batches-bin/data_batch_1.bin", &bytes[..])
        .expect("tar append");
    let s = Scratch::new("dl-cifar-partial");
    let archive = s.write(
        "cifar-10-binary.tar.gz",
        &gzip(&tar.into_inner().expect("tar")),
    );
    let msg = download::extract_cifar(&archive, s.path())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("does not contain data_batch_2.bin"), "{msg}");
    let garbage = s.write("bad.tar.gz", b"not an archive at all");
    let msg = download::extract_cifar(&garbage, s.path())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("bad.tar.gz") && msg.contains("corrupt archive"),
        "{msg}"
    );
}

#[test]
fn remote_names() {
    assert_eq!(
        Remote::from_name("Fashion-MNIST"),
        Some(Remote::FashionMnist)
    );
    assert_eq!(
        Remote::from_name("fashion_mnist"),
        Some(Remote::FashionMnist)
    );
    assert_eq!(Remote::from_name("cifar10"), Some(Remote::Cifar10));
    assert_eq!(Remote::from_name("mnist"), Some(Remote::Mnist));
    assert_eq!(Remote::from_name("imagenet"), None);
    for r in Remote::ALL {
        assert!(r.files().iter().all(|f| f.sha256.len() == 64));
        assert!(r.default_dir().starts_with("data"));
    }
}
