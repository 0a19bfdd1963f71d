//! A small, strict binary codec: fixed-width integers (big-endian), length-prefixed lists with
//! bounds checked against the remaining input, canonical scalars and valid points only.

use ff::PrimeField;
use group::GroupEncoding;
use lit_crypto::protocol::PartyId;

/// A decoding failure; the caller turns it into a `ProtocolError::Malformed` naming the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireError(pub &'static str);

pub(crate) type WireResult<T> = Result<T, WireError>;

/// Appends encodings to a buffer.
#[derive(Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.len(b.len());
        self.raw(b)
    }
    pub fn len(&mut self, n: usize) -> &mut Self {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX))
    }
    pub fn party(&mut self, p: PartyId) -> &mut Self {
        self.u32(p.get())
    }
    pub fn point<G: GroupEncoding>(&mut self, p: &G) -> &mut Self {
        self.raw(p.to_bytes().as_ref())
    }
    /// A point in its protocol wire encoding (see `DkgGroup::write_wire`).
    pub fn wire_point<G: crate::DkgGroup>(&mut self, p: &G) -> &mut Self {
        p.write_wire(&mut self.buf);
        self
    }
    pub fn scalar<F: PrimeField>(&mut self, s: &F) -> &mut Self {
        self.raw(s.to_repr().as_ref())
    }
}

/// Reads encodings from a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
    pub fn finish(&self) -> WireResult<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError("trailing bytes"))
        }
    }
    pub fn take(&mut self, n: usize) -> WireResult<&'a [u8]> {
        if n > self.buf.len() {
            return Err(WireError("truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    pub fn array<const N: usize>(&mut self) -> WireResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub fn u8(&mut self) -> WireResult<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u32(&mut self) -> WireResult<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> WireResult<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    /// A list length, refused when the rest of the input cannot hold that many items of at
    /// least `min_item` bytes (so a forged length never causes a large allocation).
    pub fn len(&mut self, min_item: usize) -> WireResult<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item.max(1)) > self.buf.len() {
            return Err(WireError("list length exceeds message"));
        }
        Ok(n)
    }
    pub fn bytes(&mut self) -> WireResult<&'a [u8]> {
        let n = self.len(1)?;
        self.take(n)
    }
    pub fn party(&mut self) -> WireResult<PartyId> {
        PartyId::new(self.u32()?).ok_or(WireError("party id 0"))
    }
    pub fn point<G: GroupEncoding>(&mut self) -> WireResult<G> {
        let mut repr = G::Repr::default();
        let width = repr.as_ref().len();
        repr.as_mut().copy_from_slice(self.take(width)?);
        Option::from(G::from_bytes(&repr)).ok_or(WireError("invalid point"))
    }
    /// A point in its protocol wire encoding: on the curve, subgroup not checked.
    pub fn wire_point<G: crate::DkgGroup>(&mut self) -> WireResult<G> {
        G::read_wire(self.take(G::WIRE_LEN)?).ok_or(WireError("invalid point"))
    }
    pub fn scalar<F: PrimeField>(&mut self) -> WireResult<F> {
        let mut repr = F::Repr::default();
        let width = repr.as_ref().len();
        repr.as_mut().copy_from_slice(self.take(width)?);
        Option::from(F::from_repr(repr)).ok_or(WireError("non-canonical scalar"))
    }
    /// A strictly increasing list of party ids (so no duplicates).
    pub fn parties(&mut self) -> WireResult<Vec<PartyId>> {
        let n = self.len(4)?;
        let mut out: Vec<PartyId> = Vec::with_capacity(n);
        for _ in 0..n {
            let p = self.party()?;
            if out.last().is_some_and(|last| *last >= p) {
                return Err(WireError("party list not strictly increasing"));
            }
            out.push(p);
        }
        Ok(out)
    }
}

pub(crate) fn scalar_width<F: PrimeField>() -> usize {
    F::Repr::default().as_ref().len()
}
