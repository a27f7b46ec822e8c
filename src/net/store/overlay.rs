//! [`Overlay`]: a `redb::StorageBackend` that reads through to a file and keeps every change in
//! memory, so that redb can open, repair and check a store's file for real while its bytes stay
//! as they are (the dry run of `Store::open`).
//!
//! Changes are kept per page of [`PAGE`] bytes: a page is copied from the file (or zeroed,
//! beyond what a shrink cut off) the first time it is written. Syncs do nothing. Memory grows
//! with the pages written, which for an open is the repair and the integrity check's commit.
//!
//! Not here: what is read (the tables), when the dry run happens (`Store::open`).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use redb::{BackendError, StorageBackend};

/// The overlay's unit of copy.
const PAGE: u64 = 4096;

/// A file seen through an in-memory layer of changes; see the module documentation.
#[derive(Debug)]
pub struct Overlay<F: StorageBackend> {
    base: F,
    layer: Mutex<Layer>,
}

#[derive(Debug)]
struct Layer {
    /// The length reads see.
    len: u64,
    /// Bytes of the file at or past this offset were cut off by a shrink: they read as zeros
    /// unless a page holds them.
    base_limit: u64,
    /// Page index → the page's bytes as changed.
    pages: BTreeMap<u64, Vec<u8>>,
}

fn past_end() -> BackendError {
    BackendError::Io(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "overlay: read past the end of the file",
    ))
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).expect("a page offset fits in memory")
}

impl<F: StorageBackend> Overlay<F> {
    pub fn new(base: F) -> Result<Overlay<F>, BackendError> {
        let len = base.len()?;
        Ok(Overlay {
            base,
            layer: Mutex::new(Layer {
                len,
                base_limit: len,
                pages: BTreeMap::new(),
            }),
        })
    }

    fn layer(&self) -> MutexGuard<'_, Layer> {
        self.layer.lock().expect("overlay layer")
    }

    /// Fills `out` with the file's bytes from `offset`, zeros past `limit`.
    fn read_base(&self, limit: u64, offset: u64, out: &mut [u8]) -> Result<(), BackendError> {
        let end = offset + out.len() as u64;
        let from_base = to_usize(end.min(limit).saturating_sub(offset));
        if from_base > 0 {
            self.base.read(offset, &mut out[..from_base])?;
        }
        out[from_base..].fill(0);
        Ok(())
    }

    /// The page `index`, copied into the layer if it is not there yet.
    fn page<'l>(&self, layer: &'l mut Layer, index: u64) -> Result<&'l mut Vec<u8>, BackendError> {
        if !layer.pages.contains_key(&index) {
            let mut page = vec![0; to_usize(PAGE)];
            self.read_base(layer.base_limit, index * PAGE, &mut page)?;
            layer.pages.insert(index, page);
        }
        Ok(layer.pages.get_mut(&index).expect("inserted above"))
    }
}

impl<F: StorageBackend> StorageBackend for Overlay<F> {
    fn len(&self) -> Result<u64, BackendError> {
        Ok(self.layer().len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BackendError> {
        let layer = self.layer();
        let end = offset
            .checked_add(out.len() as u64)
            .filter(|end| *end <= layer.len)
            .ok_or_else(past_end)?;
        let mut at = offset;
        while at < end {
            let index = at / PAGE;
            let in_page = at % PAGE;
            let n = (PAGE - in_page).min(end - at);
            let dst = &mut out[to_usize(at - offset)..to_usize(at - offset + n)];
            match layer.pages.get(&index) {
                Some(page) => dst.copy_from_slice(&page[to_usize(in_page)..to_usize(in_page + n)]),
                None => self.read_base(layer.base_limit, at, dst)?,
            }
            at += n;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), BackendError> {
        let mut layer = self.layer();
        if len < layer.len {
            layer.base_limit = layer.base_limit.min(len);
            let first_gone = len.div_ceil(PAGE);
            layer.pages.split_off(&first_gone);
            if !len.is_multiple_of(PAGE)
                && let Some(page) = layer.pages.get_mut(&(len / PAGE))
            {
                page[to_usize(len % PAGE)..].fill(0);
            }
        }
        layer.len = len;
        Ok(())
    }

    fn sync_data(&self) -> Result<(), BackendError> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        let mut layer = self.layer();
        let end = offset + data.len() as u64;
        let mut at = offset;
        while at < end {
            let index = at / PAGE;
            let in_page = at % PAGE;
            let n = (PAGE - in_page).min(end - at);
            let src = &data[to_usize(at - offset)..to_usize(at - offset + n)];
            self.page(&mut layer, index)?[to_usize(in_page)..to_usize(in_page + n)]
                .copy_from_slice(src);
            at += n;
        }
        layer.len = layer.len.max(end);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use redb::backends::InMemoryBackend;

    use super::*;

    fn bytes(b: &impl StorageBackend) -> Vec<u8> {
        let mut out = vec![0; b.len().unwrap() as usize];
        b.read(0, &mut out).unwrap();
        out
    }

    #[test]
    fn writes_and_length_changes_are_seen_through_the_overlay_and_never_reach_the_file() {
        let base = InMemoryBackend::new();
        let original: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        base.set_len(original.len() as u64).unwrap();
        base.write(0, &original).unwrap();
        let overlay = Overlay::new(base).unwrap();
        let mut model = original.clone();

        let apply = |model: &mut Vec<u8>, offset: usize, data: &[u8]| {
            overlay.write(offset as u64, data).unwrap();
            if model.len() < offset + data.len() {
                model.resize(offset + data.len(), 0);
            }
            model[offset..offset + data.len()].copy_from_slice(data);
        };
        apply(&mut model, 4000, &[7; 300]);
        apply(&mut model, 9990, &[9; 30]);
        assert_eq!(bytes(&overlay), model);
        overlay.set_len(5000).unwrap();
        model.truncate(5000);
        assert_eq!(bytes(&overlay), model);
        overlay.set_len(9000).unwrap();
        model.resize(9000, 0);
        assert_eq!(
            bytes(&overlay),
            model,
            "bytes a shrink cut off read as zeros"
        );
        apply(&mut model, 8190, &[3; 4]);
        assert_eq!(bytes(&overlay), model);
        assert!(overlay.read(8999, &mut [0; 2]).is_err());
        assert_eq!(bytes(&overlay.base), original, "the file is untouched");
    }
}
