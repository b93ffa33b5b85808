//! Where the headers of a record to append come from: any container readable by index, so a
//! caller never builds a slice of pairs per record.

/// The headers of a record to append, read by index: a caller hands over its own container
/// (e.g. a Kafka client's borrowed headers) instead of copying them into a slice per record,
/// which would cost an allocation on the hot path.
pub trait HeaderSource {
    /// Number of headers.
    fn header_count(&self) -> usize;
    /// The header at `index` (`< header_count()`): key, and value (`None` for a null value).
    fn header_at(&self, index: usize) -> (&str, Option<&[u8]>);
}

impl HeaderSource for [(&str, Option<&[u8]>)] {
    fn header_count(&self) -> usize {
        self.len()
    }
    fn header_at(&self, index: usize) -> (&str, Option<&[u8]>) {
        self[index]
    }
}

impl<const N: usize> HeaderSource for [(&str, Option<&[u8]>); N] {
    fn header_count(&self) -> usize {
        N
    }
    fn header_at(&self, index: usize) -> (&str, Option<&[u8]>) {
        self[index]
    }
}

impl HeaderSource for Vec<(&str, Option<&[u8]>)> {
    fn header_count(&self) -> usize {
        self.len()
    }
    fn header_at(&self, index: usize) -> (&str, Option<&[u8]>) {
        self[index]
    }
}

impl HeaderSource for Vec<(String, Option<Vec<u8>>)> {
    fn header_count(&self) -> usize {
        self.len()
    }
    fn header_at(&self, index: usize) -> (&str, Option<&[u8]>) {
        let (key, value) = &self[index];
        (key, value.as_deref())
    }
}

impl std::fmt::Debug for dyn HeaderSource + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries((0..self.header_count()).map(|index| self.header_at(index))).finish()
    }
}

/// No headers, for a [`RecordRef`](crate::v2::RecordRef) without any.
pub const NO_HEADERS: &[(&str, Option<&[u8]>); 0] = &[];
