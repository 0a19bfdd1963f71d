//! The AMD Key Distribution Service (KDS): VCEK URLs and an on-disk cache.
//!
//! URL format from AMD pub. 57230 ("VCEK Certificate and KDS Interface Specification"):
//! `https://kdsintf.amd.com/vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..`,
//! SPLs as two-digit decimals; Turin adds `fmcSPL` and uses only the first 8 bytes of CHIP_ID
//! as the hardware id. No HTTP client is built in: the caller supplies a [`VcekFetcher`].

use std::path::PathBuf;

use crate::error::AttestError;
use crate::report::{Generation, TcbVersion};

/// Base URL of the AMD KDS.
pub const KDS_BASE: &str = "https://kdsintf.amd.com";

/// The VCEK URL for a chip at a TCB.
pub fn vcek_url(generation: Generation, chip_id: &[u8; 64], tcb: &TcbVersion) -> String {
    let hwid = if generation.is_turin_like() {
        hex::encode(chip_id.get(..8).unwrap_or(&[]))
    } else {
        hex::encode(chip_id)
    };
    let fmc = match (generation.is_turin_like(), tcb.fmc) {
        (true, f) => format!("fmcSPL={:02}&", f.unwrap_or(0)),
        _ => String::new(),
    };
    format!(
        "{KDS_BASE}/vcek/v1/{}/{hwid}?{fmc}blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
        generation.name(),
        tcb.bootloader,
        tcb.tee,
        tcb.snp,
        tcb.microcode
    )
}

/// The URL of the ASK/ARK chain (PEM) for a generation.
pub fn cert_chain_url(generation: Generation) -> String {
    format!("{KDS_BASE}/vcek/v1/{}/cert_chain", generation.name())
}

/// HTTP GET of a URL, returning the body. Implemented by the caller (e.g. the node's HTTP client).
pub trait VcekFetcher: Send + Sync {
    /// Fetch `url`.
    fn fetch(&self, url: &str) -> Result<Vec<u8>, String>;
}

/// A directory of fetched VCEKs, one file per (generation, hwid, TCB).
#[derive(Debug, Clone)]
pub struct VcekCache {
    dir: PathBuf,
}

impl VcekCache {
    /// A cache in `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> VcekCache {
        VcekCache { dir: dir.into() }
    }

    fn path(&self, generation: Generation, chip_id: &[u8; 64], tcb: &TcbVersion) -> PathBuf {
        let n = if generation.is_turin_like() { 8 } else { 64 };
        let hw = hex::encode(chip_id.get(..n).unwrap_or(&[]));
        let t = tcb.encode(generation);
        self.dir
            .join(format!("{}-{hw}-{}.der", generation.name(), hex::encode(t)))
    }

    /// The cached VCEK, if any.
    pub fn load(
        &self,
        generation: Generation,
        chip_id: &[u8; 64],
        tcb: &TcbVersion,
    ) -> Option<Vec<u8>> {
        std::fs::read(self.path(generation, chip_id, tcb)).ok()
    }

    /// Store a VCEK (written to a temporary file and renamed, so readers never see half a file).
    pub fn store(
        &self,
        generation: Generation,
        chip_id: &[u8; 64],
        tcb: &TcbVersion,
        der: &[u8],
    ) -> Result<(), AttestError> {
        let io = |p: &PathBuf, e| AttestError::Io {
            path: p.display().to_string(),
            source: e,
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let path = self.path(generation, chip_id, tcb);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, der).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
    }
}

/// The VCEK for a chip at a TCB: from the cache, else fetched from the KDS and cached. The
/// fetched bytes must parse as a certificate; the verifier checks everything else.
pub fn fetch_vcek(
    generation: Generation,
    chip_id: &[u8; 64],
    tcb: &TcbVersion,
    cache: &VcekCache,
    fetcher: &dyn VcekFetcher,
) -> Result<Vec<u8>, AttestError> {
    if let Some(der) = cache.load(generation, chip_id, tcb) {
        return Ok(der);
    }
    if chip_id.iter().all(|&b| b == 0) {
        return Err(AttestError::NoVek(
            "CHIP_ID is masked: the KDS cannot be asked for this chip's VCEK".into(),
        ));
    }
    let url = vcek_url(generation, chip_id, tcb);
    let der = fetcher.fetch(&url).map_err(|reason| AttestError::Fetch {
        url: url.clone(),
        reason,
    })?;
    use x509_cert::der::Decode;
    x509_cert::Certificate::from_der(&der).map_err(|e| AttestError::Fetch {
        url,
        reason: format!("not a DER certificate: {e}"),
    })?;
    cache.store(generation, chip_id, tcb, &der)?;
    Ok(der)
}
