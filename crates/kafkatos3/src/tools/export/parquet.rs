//! Archived records as Parquet: the table shape Spark's and Redpanda's Kafka tables use, lossless
//! (a null key stays null, an empty one empty; headers in order, duplicates kept), for any engine
//! that reads Parquet (DuckDB, Spark, Trino, Athena).
//!
//! One [`ParquetFile`] collects the records of one output file and encodes them row group by row
//! group: zstd pages, row groups of [`ROW_GROUP_ROWS`], statistics on `partition`, `offset` and
//! `timestamp` (what engines prune on) and none on the payload columns (large, and useless for
//! pruning). The same records always give the same bytes, so a re-run writes identical files.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Int32Builder, Int64Builder, ListBuilder, StringBuilder, StructBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use mak::v2::{Record, TimestampType};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

/// Rows per row group at most (engines read a row group as a unit; around a million rows, or the
/// payload limit below, is what they are tuned for).
pub const ROW_GROUP_ROWS: usize = 1024 * 1024;

/// Bytes per row group at most (keys, values, headers, the topic, and what each row costs the
/// builders): a group of large records is written before its rows reach [`ROW_GROUP_ROWS`].
pub const ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;

/// What a row costs the builders besides its payload and topic: the offsets into the variable
/// columns, the fixed-width values, validity bits.
const ROW_BYTES: usize = 48;

/// Bytes of a data page at most (before compression): zstd compresses a larger page of similar
/// values better (100-byte values: 12 % smaller than with the default 1 MiB), and a page holds at
/// most 20,000 rows anyway, which keeps the page index's pruning fine-grained.
const PAGE_BYTES: usize = 8 * 1024 * 1024;

/// zstd level of the pages: the archive's own default.
const ZSTD_LEVEL: i32 = 3;

/// What goes in the value columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ValueFormat {
    /// `value` as the bytes Kafka held.
    #[default]
    Raw,
    /// Also `value_text`: the value as UTF-8 text (null where it is not), for engines' JSON
    /// functions.
    Json,
}

impl ValueFormat {
    pub fn name(self) -> &'static str {
        match self {
            ValueFormat::Raw => "raw",
            ValueFormat::Json => "json",
        }
    }
}

/// The columns, in order.
pub fn schema(values: ValueFormat) -> SchemaRef {
    let mut fields = vec![
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("timestamp", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), true),
        Field::new("timestamp_type", DataType::Utf8, true),
        Field::new("key", DataType::Binary, true),
        Field::new("value", DataType::Binary, true),
        Field::new("headers", DataType::List(Arc::new(header_element())), false),
    ];
    if values == ValueFormat::Json {
        fields.push(Field::new("value_text", DataType::Utf8, true));
    }
    Arc::new(Schema::new(fields))
}

/// One header: its key (never null in Kafka) and its value (null allowed).
fn header_fields() -> Fields {
    Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Binary, true)])
}

/// The list's element, named as the Parquet spec's LIST type names it.
fn header_element() -> Field {
    Field::new("element", DataType::Struct(header_fields()), false)
}

/// The records of one output file, in the order added: collected in column builders and
/// written as a row group (encoded and compressed into the file's bytes) every
/// [`ROW_GROUP_ROWS`] records or [`ROW_GROUP_BYTES`] of keys, values and headers, so that a
/// file of large records is never held uncompressed whole.
pub struct ParquetFile {
    values: ValueFormat,
    schema: SchemaRef,
    writer: ArrowWriter<Vec<u8>>,
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    timestamp: TimestampMillisecondBuilder,
    timestamp_type: StringBuilder,
    key: BinaryBuilder,
    value: BinaryBuilder,
    headers: ListBuilder<StructBuilder>,
    value_text: StringBuilder,
    /// A row group is written at this many rows or payload bytes.
    max_group_rows: usize,
    max_group_bytes: usize,
    /// In the builders, not yet written.
    group_rows: usize,
    group_bytes: usize,
    rows: usize,
}

impl ParquetFile {
    /// An empty file. `metadata`: key-value pairs of the file's footer (where the records came
    /// from).
    pub fn new(values: ValueFormat, metadata: &[(&str, String)]) -> Result<Self, ParquetError> {
        let schema = schema(values);
        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties(metadata)))?;
        let element = StructBuilder::from_fields(header_fields(), 0);
        Ok(ParquetFile {
            values,
            schema,
            writer,
            topic: StringBuilder::new(),
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            timestamp: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            timestamp_type: StringBuilder::new(),
            key: BinaryBuilder::new(),
            value: BinaryBuilder::new(),
            headers: ListBuilder::new(element).with_field(Arc::new(header_element())),
            value_text: StringBuilder::new(),
            max_group_rows: ROW_GROUP_ROWS,
            max_group_bytes: ROW_GROUP_BYTES,
            group_rows: 0,
            group_bytes: 0,
            rows: 0,
        })
    }

    /// Row groups of at most `rows` records or `bytes` of payload (the last record of a group
    /// may take it over).
    #[cfg(test)]
    pub fn with_row_groups(mut self, rows: usize, bytes: usize) -> Self {
        (self.max_group_rows, self.max_group_bytes) = (rows.clamp(1, ROW_GROUP_ROWS), bytes);
        self
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Adds `record` of `topic`/`partition`. A record without a timestamp (MAK v1, or a producer
    /// that set none) has a null `timestamp` and `timestamp_type`.
    pub fn push(&mut self, topic: &str, partition: i32, record: &Record<'_>) -> Result<(), ParquetError> {
        self.topic.append_value(topic);
        self.partition.append_value(partition);
        self.offset.append_value(record.offset);
        match record.timestamp_type {
            // Kafka's "no timestamp" is -1: filed under the null hour, so null here too.
            _ if record.timestamp < 0 => {
                self.timestamp.append_null();
                self.timestamp_type.append_null();
            }
            TimestampType::NotAvailable => {
                self.timestamp.append_null();
                self.timestamp_type.append_null();
            }
            TimestampType::CreateTime => {
                self.timestamp.append_value(record.timestamp);
                self.timestamp_type.append_value("CreateTime");
            }
            TimestampType::LogAppendTime => {
                self.timestamp.append_value(record.timestamp);
                self.timestamp_type.append_value("LogAppendTime");
            }
        }
        self.key.append_option(record.key);
        self.value.append_option(record.value);
        let mut bytes =
            ROW_BYTES + topic.len() + record.key.map_or(0, <[u8]>::len) + record.value.map_or(0, <[u8]>::len);
        let element = self.headers.values();
        for (key, value) in record.headers {
            element.field_builder::<StringBuilder>(0).expect("header key column").append_value(key);
            element.field_builder::<BinaryBuilder>(1).expect("header value column").append_option(value);
            element.append(true);
            bytes += key.len() + value.map_or(0, <[u8]>::len);
        }
        self.headers.append(true);
        if self.values == ValueFormat::Json {
            self.value_text.append_option(record.value.and_then(|v| std::str::from_utf8(v).ok()));
            bytes += record.value.map_or(0, <[u8]>::len);
        }
        self.rows += 1;
        self.group_rows += 1;
        self.group_bytes += bytes;
        if self.group_rows >= self.max_group_rows || self.group_bytes >= self.max_group_bytes {
            self.write_group()?;
        }
        Ok(())
    }

    /// Bytes in the builders, not yet written.
    pub fn buffered(&self) -> usize {
        self.group_bytes
    }

    /// The builders' records as one row group.
    pub fn write_group(&mut self) -> Result<(), ParquetError> {
        if self.group_rows == 0 {
            return Ok(());
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.timestamp_type.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.headers.finish()),
        ];
        if self.values == ValueFormat::Json {
            columns.push(Arc::new(self.value_text.finish()));
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        self.writer.write(&batch)?;
        self.writer.flush()?;
        (self.group_rows, self.group_bytes) = (0, 0);
        Ok(())
    }

    /// The Parquet file's bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, ParquetError> {
        self.write_group()?;
        self.writer.into_inner()
    }
}

fn properties(metadata: &[(&str, String)]) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).expect("a zstd level")))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_size_limit(PAGE_BYTES)
        .set_created_by(concat!("kafkatos3 ", env!("CARGO_PKG_VERSION")).to_string())
        .set_statistics_enabled(EnabledStatistics::None)
        .set_key_value_metadata(Some(
            metadata.iter().map(|(k, v)| parquet::file::metadata::KeyValue::new(k.to_string(), v.clone())).collect(),
        ));
    for column in ["partition", "offset", "timestamp"] {
        builder = builder.set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::Page);
    }
    // Offsets count up and timestamps mostly do: deltas bit-packed are a few bits a row, where a
    // dictionary (every value distinct) is wasted work and plain values cost zstd 3 bytes a row.
    for column in ["offset", "timestamp"] {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(column), false)
            .set_column_encoding(ColumnPath::from(column), Encoding::DELTA_BINARY_PACKED);
    }
    // One topic per file: its dictionary page is the whole column.
    builder.set_column_statistics_enabled(ColumnPath::from("topic"), EnabledStatistics::Chunk).build()
}

#[cfg(test)]
mod tests;
