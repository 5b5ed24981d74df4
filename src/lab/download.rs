//! `--download`: fetch MNIST, Fashion-MNIST or CIFAR-10, check each file's
//! size and SHA-256, and write it atomically.
//!
//! Every file is streamed into a temporary file in the destination directory
//! (`.NAME.PID.N.tmp`, see [`crate::files`]), hashed on the way, fsynced,
//! and renamed over the final name only once its size and checksum match; on
//! any error the temporary file is removed, so the final name holds a
//! verified file or nothing. (A process killed mid-download can leave a
//! temporary file behind: it never has a name the readers look for, and the
//! next download of that file removes it.)
//!
//! # Where the checksums come from
//!
//! - Fashion-MNIST: TensorFlow Datasets' `url_checksums/fashion_mnist.txt`,
//!   the same values other projects list beside Zalando's official MD5s.
//!   Checked here: Debian's `dataset-fashion-mnist` holds the same deflate
//!   streams re-wrapped without the gzip header's file name; putting the
//!   name and the original mtime back reproduces these four SHA-256 values
//!   (and Zalando's MD5s) byte for byte. The decompressed content's sizes
//!   and SHA-256 sums were computed here from those files (`zcat F |
//!   sha256sum`), so Debian's files (24 bytes shorter each) are accepted
//!   without a download.
//! - MNIST: TensorFlow Datasets' `url_checksums/mnist.txt` (its CVDF mirror
//!   of yann.lecun.com), the same values several independent projects list
//!   for yann.lecun.com itself. Not recomputed here: no copy of MNIST was
//!   available offline, so no content checksum is pinned either (CIFAR-10
//!   neither).
//! - CIFAR-10: TensorFlow Datasets' `url_checksums/cifar10.txt`, matching
//!   several independent projects. Not recomputed here, for the same reason.
//!
//! The canonical base URL can be replaced — a mirror, or a local server in
//! tests — by the `base_url` argument or the [`BASE_URL_ENV`] variable.

use crate::data::{cifar, idx::open_error};
use crate::error::{Error, Result};
use crate::files::TempFile;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Overrides the canonical base URL of every [`Remote`] when set.
pub const BASE_URL_ENV: &str = "WGPU_TRAIN_DATA_URL";

/// The datasets [`download`] knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remote {
    Mnist,
    FashionMnist,
    Cifar10,
}

/// A file to fetch: its name under the base URL, exact size and SHA-256,
/// and, where known, the size and SHA-256 of its decompressed content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    pub name: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
    /// The decompressed content's size and SHA-256 (lower-case hex): a file
    /// already on disk whose content matches is kept, whatever its
    /// compression (another gzip header, another level, none at all).
    pub content: Option<(u64, String)>,
}

impl RemoteFile {
    pub fn new(name: &str, size: u64, sha256: &str) -> Self {
        RemoteFile {
            name: name.to_string(),
            size,
            sha256: sha256.to_ascii_lowercase(),
            content: None,
        }
    }

    /// The same file, with the size and SHA-256 of its decompressed content.
    pub fn with_content(self, size: u64, sha256: &str) -> Self {
        RemoteFile {
            content: Some((size, sha256.to_ascii_lowercase())),
            ..self
        }
    }
}

/// CIFAR-10's only canonical file.
pub const CIFAR_ARCHIVE: &str = "cifar-10-binary.tar.gz";

impl Remote {
    /// All of them, for `--help` texts.
    pub const ALL: [Remote; 3] = [Remote::Mnist, Remote::FashionMnist, Remote::Cifar10];

    /// "mnist", "fashion-mnist", "cifar-10".
    pub fn name(self) -> &'static str {
        match self {
            Remote::Mnist => "mnist",
            Remote::FashionMnist => "fashion-mnist",
            Remote::Cifar10 => "cifar-10",
        }
    }

    /// Parses [`Remote::name`], ignoring case, '-' and '_' ("FashionMNIST",
    /// "cifar10" work too).
    pub fn from_name(name: &str) -> Option<Remote> {
        let key: String = name
            .chars()
            .filter(|c| !matches!(c, '-' | '_'))
            .collect::<String>()
            .to_ascii_lowercase();
        Remote::ALL
            .into_iter()
            .find(|r| r.name().replace('-', "") == key)
    }

    /// [`Remote::from_name`], or an error that lists the names known.
    pub fn parse(name: &str) -> Result<Remote> {
        Remote::from_name(name).ok_or_else(|| Error::InvalidArgument {
            name: "--download",
            msg: format!(
                "unknown dataset '{name}'; use {}",
                Remote::ALL.map(Remote::name).join(", ")
            ),
        })
    }

    /// Where the files live upstream.
    pub fn canonical_base_url(self) -> &'static str {
        match self {
            // yann.lecun.com now often refuses downloads; TensorFlow Datasets
            // and others use this mirror, which serves identical files.
            Remote::Mnist => "https://storage.googleapis.com/cvdf-datasets/mnist/",
            // The address Zalando's README gives; plain HTTP only, which the
            // SHA-256 check makes safe.
            Remote::FashionMnist => "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            Remote::Cifar10 => "https://www.cs.toronto.edu/~kriz/",
        }
    }

    /// `data/mnist`, `data/fashion-mnist` or `data/cifar-10` (relative to the
    /// working directory; [`crate::data::load`] searches these).
    pub fn default_dir(self) -> PathBuf {
        Path::new("data").join(self.name())
    }

    /// The files, sizes and SHA-256 sums (see the module docs for their source).
    pub fn files(self) -> Vec<RemoteFile> {
        match self {
            Remote::Mnist => vec![
                RemoteFile::new(
                    "train-images-idx3-ubyte.gz",
                    9_912_422,
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                ),
                RemoteFile::new(
                    "train-labels-idx1-ubyte.gz",
                    28_881,
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                ),
                RemoteFile::new(
                    "t10k-images-idx3-ubyte.gz",
                    1_648_877,
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                ),
                RemoteFile::new(
                    "t10k-labels-idx1-ubyte.gz",
                    4_542,
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                ),
            ],
            Remote::FashionMnist => vec![
                RemoteFile::new(
                    "train-images-idx3-ubyte.gz",
                    26_421_880,
                    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                )
                .with_content(
                    47_040_016,
                    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                ),
                RemoteFile::new(
                    "train-labels-idx1-ubyte.gz",
                    29_515,
                    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                )
                .with_content(
                    60_008,
                    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                ),
                RemoteFile::new(
                    "t10k-images-idx3-ubyte.gz",
                    4_422_102,
                    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                )
                .with_content(
                    7_840_016,
                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                ),
                RemoteFile::new(
                    "t10k-labels-idx1-ubyte.gz",
                    5_148,
                    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                )
                .with_content(
                    10_008,
                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                ),
            ],
            Remote::Cifar10 => vec![RemoteFile::new(
                CIFAR_ARCHIVE,
                170_052_171,
                "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
            )],
        }
    }
}

/// Downloads `remote` into `dir` (created if needed) and returns the
/// directory to pass to [`crate::data::load`]. Files already there with the right
/// checksum are kept, so running it twice fetches nothing the second time.
///
/// `base_url` replaces the canonical location; when `None`,
/// `$WGPU_TRAIN_DATA_URL` does, when set. CIFAR-10's archive is extracted to
/// `dir/cifar-10-batches-bin/` and then deleted. Prints one line per file
/// fetched to stderr, since a 170 MB download should not look like a hang.
pub fn download(remote: Remote, dir: &Path, base_url: Option<&str>) -> Result<PathBuf> {
    let env_url = std::env::var(BASE_URL_ENV).ok().filter(|u| !u.is_empty());
    let base = base_url
        .map(str::to_string)
        .or(env_url)
        .unwrap_or_else(|| remote.canonical_base_url().to_string());
    match remote {
        Remote::Mnist | Remote::FashionMnist => {
            fetch_files(&base, dir, &remote.files())?;
            Ok(dir.to_path_buf())
        }
        Remote::Cifar10 => {
            if let Ok(Some(found)) = cifar::find_batches(dir) {
                return Ok(found);
            }
            let archive = fetch_files(&base, dir, &remote.files())?.remove(0);
            let out = extract_cifar(&archive, dir)?;
            // The batches are what the reader needs; 170 MB more is waste.
            let _ = fs::remove_file(&archive);
            Ok(out)
        }
    }
}

/// Downloads the dataset called `name` (see [`Remote::from_name`]) into its
/// [`Remote::default_dir`] (files already there and intact are kept) and
/// reads it: what `--download NAME` does.
pub fn download_and_load(name: &str) -> Result<crate::data::Splits> {
    let remote = Remote::parse(name)?;
    let dir = remote.default_dir();
    eprintln!("fetching {} into {} …", remote.name(), dir.display());
    crate::data::load(Some(&download(remote, &dir, None)?))
}

/// Fetches each file from `base_url` + name into `dir`, skipping those
/// already present with the right size and SHA-256, or with the pinned
/// decompressed content (under the name, or the name without `.gz`; see
/// [`RemoteFile::content`]). A file that is there but refused is replaced,
/// after a line saying why. Returns the paths to read.
pub fn fetch_files(base_url: &str, dir: &Path, files: &[RemoteFile]) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)
        .map_err(|e| Error::data(dir, format!("cannot create the directory: {e}")))?;
    let base = base_url.trim_end_matches('/');
    let mut paths = Vec::with_capacity(files.len());
    for f in files {
        let dest = dir.join(&f.name);
        match existing(dir, f) {
            Ok(path) => paths.push(path),
            Err(why) => {
                if let Some(why) = why {
                    eprintln!("{}: {why}; fetching it again", dest.display());
                }
                let url = format!("{base}/{}", f.name);
                eprintln!("fetching {url} ({})", crate::error::bytes(f.size));
                fetch_file(&url, &dest, f.size, &f.sha256)?;
                paths.push(dest);
            }
        }
    }
    Ok(paths)
}

/// A copy of `f` already in `dir` that can be used as it is: the file
/// itself (size and SHA-256 as published), or, when `f` pins its
/// decompressed content, any file under its name or its name without
/// `.gz` whose content matches (Debian's Fashion-MNIST is the same data in
/// a different gzip wrapper). `Err(None)` when there is none;
/// `Err(Some(why))` when a file is there but refused, saying precisely why.
pub fn existing(dir: &Path, f: &RemoteFile) -> std::result::Result<PathBuf, Option<String>> {
    let dest = dir.join(&f.name);
    let raw = f.name.strip_suffix(".gz").map(|n| dir.join(n));
    let mut refused = None;
    for path in std::iter::once(dest).chain(raw) {
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            _ => continue,
        }
        let file_sha = sha256_file(&path).map_err(|e| Some(e.to_string()))?;
        let len = fs::metadata(&path).map_or(0, |m| m.len());
        if len == f.size && file_sha == f.sha256 {
            return Ok(path);
        }
        let mut why = format!(
            "{len} bytes with SHA-256 {file_sha}, not the published {} bytes with SHA-256 {}",
            f.size, f.sha256
        );
        if let Some((size, sha)) = &f.content {
            match content_sha256(&path, *size) {
                Ok((n, h)) if n == *size && h == *sha => {
                    eprintln!(
                        "{}: kept: its decompressed content matches the pinned SHA-256 of {} \
                         (the same data, compressed differently)",
                        path.display(),
                        f.name
                    );
                    return Ok(path);
                }
                Ok((n, h)) => why.push_str(&format!(
                    ", and its decompressed content ({n} bytes, SHA-256 {h}) is not the pinned \
                     content ({size} bytes, SHA-256 {sha})"
                )),
                Err(e) => why.push_str(&format!(", and its content cannot be read: {e}")),
            }
        }
        // Report the file under the published name if both are there.
        refused.get_or_insert(why);
    }
    Err(refused)
}

/// Size and SHA-256 of a file's content: gunzipped when it starts with
/// gzip's magic bytes, as it is otherwise. Reads at most `limit + 1`
/// decompressed bytes, so a decompression bomb costs no more than a match.
fn content_sha256(path: &Path, limit: u64) -> std::result::Result<(u64, String), String> {
    let mut file = File::open(path).map_err(|e| open_error(&e))?;
    let mut magic = [0u8; 2];
    let gzip = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    drop(file);
    let file = io::BufReader::new(File::open(path).map_err(|e| open_error(&e))?);
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut hasher = Sha256::new();
    let n = io::copy(&mut reader.take(limit.saturating_add(1)), &mut hasher)
        .map_err(|e| format!("not valid gzip: {e}"))?;
    Ok((n, hex(&hasher.finalize())))
}

/// Fetches one URL to `dest` atomically: the file appears only once its size
/// is `size` and its SHA-256 is `sha256`; on any error nothing is left.
///
/// Without the `download` feature (no HTTPS client in the build) this is
/// an error saying how to get the file by hand; nothing is written.
#[cfg(not(feature = "download"))]
pub fn fetch_file(url: &str, dest: &Path, size: u64, sha256: &str) -> Result<()> {
    Err(Error::Download {
        url: url.to_string(),
        msg: format!(
            "this build has no downloads (it was built without the `download` cargo feature); \
             fetch the file yourself into {} ({size} bytes, SHA-256 {sha256}), or install \
             dataset-fashion-mnist, or rebuild with `--features download`",
            dest.display()
        ),
    })
}

/// Fetches one URL to `dest` atomically: the file appears only once its size
/// is `size` and its SHA-256 is `sha256`; on any error nothing is left.
#[cfg(feature = "download")]
pub fn fetch_file(url: &str, dest: &Path, size: u64, sha256: &str) -> Result<()> {
    use std::io::Write;
    use std::time::Duration;
    let fail = |msg: String| Error::Download {
        url: url.to_string(),
        msg,
    };
    let mut config = ureq::Agent::config_builder();
    if is_loopback(url) {
        // A local mirror or test server: an http_proxy from the environment
        // would not reach it.
        config = config.proxy(None);
    }
    let agent: ureq::Agent = config
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // Per read, not overall: a slow link may take minutes for CIFAR-10.
        .timeout_recv_body(None)
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    if let Some(len) = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len != size
    {
        return Err(fail(format!(
            "the server announces {len} bytes, expected {size}: not the file whose checksum we know"
        )));
    }
    let mut body = response.body_mut().as_reader().take(size + 1);
    let mut temp = temp_file(dest)?;
    let mut hasher = Sha256::new();
    let mut got = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(format!("after {got} bytes: {e}"))),
        };
        hasher.update(&buf[..n]);
        temp.write_all(&buf[..n])
            .map_err(|e| Error::data(dest, format!("write error: {e}")))?;
        got += n as u64;
    }
    if got != size {
        return Err(fail(format!("received {got} bytes, expected {size}")));
    }
    let digest = hex(&hasher.finalize());
    if digest != sha256.to_ascii_lowercase() {
        return Err(fail(format!(
            "SHA-256 mismatch: got {digest}, expected {sha256}; the file is corrupt or not the \
             published one, and was not kept"
        )));
    }
    commit(temp)
}

#[cfg(feature = "download")]
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

/// SHA-256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::data(path, open_error(&e)))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(|e| Error::data(path, format!("read error: {e}")))?;
    Ok(hex(&hasher.finalize()))
}

/// SHA-256 of bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Extracts the six CIFAR-10 batch files from `archive` (the official
/// `cifar-10-binary.tar.gz`) into `dir/cifar-10-batches-bin/`, each
/// atomically, and returns that directory. Only those six names are
/// extracted, wherever they sit in the archive, so an entry like
/// `../../etc/x` can never be written.
pub fn extract_cifar(archive: &Path, dir: &Path) -> Result<PathBuf> {
    let out = dir.join(cifar::BATCHES_DIR);
    fs::create_dir_all(&out)
        .map_err(|e| Error::data(&out, format!("cannot create the directory: {e}")))?;
    let wanted: Vec<&str> = cifar::TRAIN_FILES
        .iter()
        .copied()
        .chain([cifar::TEST_FILE])
        .collect();
    let file = File::open(archive).map_err(|e| Error::data(archive, open_error(&e)))?;
    let bad = |e: io::Error| Error::data(archive, format!("corrupt archive: {e}"));
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    let mut done: Vec<&str> = Vec::new();
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(bad)?.into_owned();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| wanted.iter().copied().find(|w| *w == n))
        else {
            continue;
        };
        let size = entry.header().size().map_err(bad)?;
        if size > cifar::MAX_BYTES {
            return Err(Error::data(
                archive,
                format!(
                    "{} claims {size} bytes, more than any CIFAR-10 batch",
                    path.display()
                ),
            ));
        }
        let dest = out.join(name);
        let mut temp = temp_file(&dest)?;
        let copied = io::copy(&mut (&mut entry).take(size + 1), &mut temp).map_err(bad)?;
        if copied != size {
            return Err(Error::data(
                archive,
                format!(
                    "{} holds {copied} bytes, its header says {size}",
                    path.display()
                ),
            ));
        }
        commit(temp)?;
        done.push(name);
    }
    let missing: Vec<&str> = wanted.into_iter().filter(|w| !done.contains(w)).collect();
    if !missing.is_empty() {
        return Err(Error::data(
            archive,
            format!("does not contain {}", missing.join(", ")),
        ));
    }
    Ok(out)
}

/// A temporary file beside `dest` (see [`crate::files`]), as a data error.
fn temp_file(dest: &Path) -> Result<TempFile> {
    TempFile::create(dest)
        .map_err(|e| Error::data(dest, format!("cannot create a temporary file: {e}")))
}

/// fsync, rename over the destination, fsync the directory.
fn commit(temp: TempFile) -> Result<()> {
    let dest = temp.destination().to_path_buf();
    temp.commit().map_err(|e| {
        Error::data(
            &dest,
            format!("cannot rename the finished download into place: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "download")]
    #[test]
    fn loopback_urls_bypass_proxies() {
        assert!(is_loopback("http://127.0.0.1:8080/x.gz"));
        assert!(is_loopback("http://localhost/x"));
        assert!(is_loopback("http://[::1]:9/"));
        assert!(!is_loopback("https://www.cs.toronto.edu/~kriz/"));
        assert!(!is_loopback("http://127.0.0.1.evil.example@host.example/"));
    }

    /// Without the feature, a download is an error that says what to do,
    /// and leaves nothing behind.
    #[cfg(not(feature = "download"))]
    #[test]
    fn without_the_download_feature_fetching_says_how_to_get_the_file() {
        let dir = std::env::temp_dir().join(format!("wgpu-train-nodl-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("train-images-idx3-ubyte.gz");
        let e = fetch_file("http://127.0.0.1:9/x.gz", &dest, 10, "ab").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("`download` cargo feature"), "{msg}");
        assert!(msg.contains("dataset-fashion-mnist"), "{msg}");
        assert!(!dest.exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
