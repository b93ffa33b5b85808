//! Streaming an S3 object's body into the blocking reader the parser reads.

use std::io::{self, Read};

/// A blocking reader of an S3 object's body, streamed in the chunks S3 sends (a small runtime
/// of its own fetches them), so an object of any size is printed in bounded memory.
pub struct S3Reader {
    chunks: tokio::sync::mpsc::Receiver<io::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
    _runtime: tokio::runtime::Runtime,
}

pub fn s3_reader(
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    key: object_store::path::Path,
) -> io::Result<S3Reader> {
    use futures::StreamExt;
    use object_store::ObjectStoreExt;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let (tx, chunks) = tokio::sync::mpsc::channel(4);
    runtime.spawn(async move {
        let mut body = match store.get(&key).await {
            Ok(result) => result.into_stream(),
            Err(error) => {
                let _ = tx.send(Err(io::Error::other(error))).await;
                return;
            }
        };
        while let Some(chunk) = body.next().await {
            let failed = chunk.is_err();
            if tx.send(chunk.map_err(io::Error::other)).await.is_err() || failed {
                return;
            }
        }
    });
    Ok(S3Reader { chunks, chunk: bytes::Bytes::new(), _runtime: runtime })
}

impl Read for S3Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.chunks.blocking_recv() {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(error)) => return Err(error),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
