//! The Flight SQL catalog calls: catalogs, schemas, tables, table types, SQL
//! info, XDBC type info and primary keys, answered from the principal's
//! session (only what it may read).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    Any, CommandGetCatalogs, CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, Nullable, ProstMessageExt, Searchable, SqlInfo, SqlSupportedTransaction,
    XdbcDataType, XdbcDatetimeSubcode,
};
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use civlink_catalog::policy::AuditAction;
use civlink_query::{CATALOG, Error, ScopedSession, SessionFactory};
use futures::TryStreamExt;
use prost::Message;
use tonic::{Request, Response, Status};

use super::{CivlinkFlightSql, DoGetStream, TABLE_TYPE};
use crate::error::to_status;

impl CivlinkFlightSql {
    /// A metadata `FlightInfo`: the command itself is the ticket.
    async fn metadata_info(
        &self,
        request: Request<FlightDescriptor>,
        command: Any,
        schema: &Schema,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(request.metadata(), AuditAction::Metadata).await?;
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| to_status(&Error::from(e)))?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(command.encode_to_vec())))
            .with_descriptor(request.into_inner());
        Ok(Response::new(info))
    }

    /// The principal's session, for a metadata call.
    async fn metadata_session(&self, request: &Request<Ticket>) -> Result<ScopedSession, Status> {
        let principal = self.principal(request.metadata(), AuditAction::Metadata).await?;
        self.factory().session_for(&principal).await.map_err(|e| to_status(&e))
    }

    pub(super) async fn catalogs_info(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(request, query.as_any(), &schema).await
    }

    pub(super) async fn catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.principal(request.metadata(), AuditAction::Metadata).await?;
        let mut builder = query.into_builder();
        builder.append(CATALOG);
        Ok(one_batch(builder.schema(), builder.build()))
    }

    pub(super) async fn schemas_info(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, query.as_any(), &schema).await
    }

    pub(super) async fn schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.metadata_session(&request).await?;
        let mut departments: Vec<&str> = session.datasets.iter().map(|(r, _)| r.spec.id.department.code()).collect();
        departments.sort_unstable();
        departments.dedup();
        let mut builder = query.into_builder();
        for department in departments {
            builder.append(CATALOG, department);
        }
        Ok(one_batch(builder.schema(), builder.build()))
    }

    pub(super) async fn tables_info(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, query.as_any(), &schema).await
    }

    pub(super) async fn tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.metadata_session(&request).await?;
        let include_schema = query.include_schema;
        let mut builder = query.into_builder();
        let mut ids: Vec<_> = session.datasets.iter().map(|(r, _)| r.spec.id.clone()).collect();
        ids.sort();
        for id in ids {
            let schema = if include_schema {
                match session.table(&id).await.map_err(|e| to_status(&e))? {
                    Some(table) => civlink_query::plain::plain_schema(&table.schema()),
                    None => continue,
                }
            } else {
                Arc::new(Schema::empty())
            };
            builder
                .append(CATALOG, id.department.code(), &id.name, TABLE_TYPE, &schema)
                .map_err(|e| to_status(&flight_error(e)))?;
        }
        Ok(one_batch(builder.schema(), builder.build()))
    }

    pub(super) async fn table_types_info(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(request, query.as_any(), &schema).await
    }

    pub(super) async fn table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.principal(request.metadata(), AuditAction::Metadata).await?;
        let mut builder = query.into_builder();
        builder.append(TABLE_TYPE);
        Ok(one_batch(builder.schema(), builder.build()))
    }

    pub(super) async fn sql_info_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.inner.sql_info).schema();
        self.metadata_info(request, query.as_any(), &schema).await
    }

    pub(super) async fn sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.principal(request.metadata(), AuditAction::Metadata).await?;
        let builder = query.into_builder(&self.inner.sql_info);
        Ok(one_batch(builder.schema(), builder.build()))
    }

    pub(super) async fn xdbc_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&self.inner.xdbc).schema();
        self.metadata_info(request, query.as_any(), &schema).await
    }

    pub(super) async fn xdbc(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.principal(request.metadata(), AuditAction::Metadata).await?;
        let builder = query.into_builder(&self.inner.xdbc);
        Ok(one_batch(builder.schema(), builder.build()))
    }

    pub(super) async fn primary_keys_info(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query.as_any(), &primary_keys_schema()).await
    }

    pub(super) async fn primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.metadata_session(&request).await?;
        let mut catalogs = StringBuilder::new();
        let mut schemas = StringBuilder::new();
        let mut tables = StringBuilder::new();
        let mut columns = StringBuilder::new();
        let mut key_names = StringBuilder::new();
        let mut sequence = Int32Builder::new();
        let catalog_ok = query.catalog.as_deref().is_none_or(|c| c == CATALOG);
        for (record, access) in session.datasets.iter() {
            let id = &record.spec.id;
            let schema_ok = query.db_schema.as_deref().is_none_or(|s| s == id.department.code());
            if !catalog_ok || !schema_ok || id.name != query.table {
                continue;
            }
            // Only key columns the principal can see are reported.
            let visible = record.spec.primary_key.iter().filter(|k| access.column(k).is_some());
            for (position, column) in (1..).zip(visible) {
                catalogs.append_value(CATALOG);
                schemas.append_value(id.department.code());
                tables.append_value(&id.name);
                columns.append_value(column);
                key_names.append_null();
                sequence.append_value(position);
            }
        }
        let schema = primary_keys_schema();
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(catalogs.finish()),
            Arc::new(schemas.finish()),
            Arc::new(tables.finish()),
            Arc::new(columns.finish()),
            Arc::new(key_names.finish()),
            Arc::new(sequence.finish()),
        ];
        Ok(one_batch(Arc::clone(&schema), RecordBatch::try_new(schema, arrays)))
    }
}

/// An arrow-flight builder's failure: ours, not the client's.
fn flight_error(error: FlightError) -> Error {
    Error::Arrow { message: error.to_string() }
}

/// A response streaming one batch.
fn one_batch<E: Into<FlightError>>(schema: SchemaRef, batch: Result<RecordBatch, E>) -> Response<DoGetStream> {
    let batch = batch.map_err(Into::into);
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async { batch }))
        .map_err(Status::from);
    Response::new(Box::pin(stream))
}

/// The schema of `GetPrimaryKeys` results (Flight SQL spec).
pub(super) fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// What `GetSqlInfo` reports.
pub(super) fn sql_info(factory: &SessionFactory) -> civlink_query::Result<SqlInfoData> {
    let mut builder = SqlInfoDataBuilder::new();
    builder.append(SqlInfo::FlightSqlServerName, "civlink");
    builder.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    builder.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    builder.append(SqlInfo::FlightSqlServerReadOnly, true);
    builder.append(SqlInfo::FlightSqlServerSql, true);
    builder.append(SqlInfo::FlightSqlServerSubstrait, false);
    builder.append(SqlInfo::FlightSqlServerTransaction, SqlSupportedTransaction::None as i32);
    builder.append(SqlInfo::FlightSqlServerCancel, true);
    let timeout = i32::try_from(factory.limits().query_timeout.as_secs()).unwrap_or(i32::MAX);
    builder.append(SqlInfo::FlightSqlServerStatementTimeout, timeout);
    builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    builder.append(SqlInfo::SqlDdlCatalog, false);
    builder.append(SqlInfo::SqlDdlSchema, false);
    builder.append(SqlInfo::SqlDdlTable, false);
    builder.append(SqlInfo::SqlAllTablesAreSelectable, true);
    builder.build().map_err(flight_error)
}

/// What `GetXdbcTypeInfo` reports: the SQL types results come in.
pub(super) fn xdbc_types() -> civlink_query::Result<XdbcTypeInfoData> {
    let base = |name: &str, data_type: XdbcDataType| XdbcTypeInfo {
        type_name: name.into(),
        data_type,
        nullable: Nullable::NullabilityNullable,
        searchable: Searchable::Full,
        local_type_name: Some(name.into()),
        sql_data_type: data_type,
        ..Default::default()
    };
    let mut builder = XdbcTypeInfoDataBuilder::new();
    builder.append(XdbcTypeInfo {
        literal_prefix: Some("'".into()),
        literal_suffix: Some("'".into()),
        case_sensitive: true,
        ..base("VARCHAR", XdbcDataType::XdbcVarchar)
    });
    for (name, t, size) in [
        ("BIGINT", XdbcDataType::XdbcBigint, 64),
        ("INTEGER", XdbcDataType::XdbcInteger, 32),
        ("DOUBLE", XdbcDataType::XdbcDouble, 53),
    ] {
        builder.append(XdbcTypeInfo {
            column_size: Some(size),
            unsigned_attribute: Some(false),
            num_prec_radix: Some(2),
            ..base(name, t)
        });
    }
    builder.append(base("BOOLEAN", XdbcDataType::XdbcBit));
    builder.append(XdbcTypeInfo {
        literal_prefix: Some("DATE '".into()),
        literal_suffix: Some("'".into()),
        sql_data_type: XdbcDataType::XdbcDatetime,
        datetime_subcode: Some(XdbcDatetimeSubcode::XdbcSubcodeYear),
        ..base("DATE", XdbcDataType::XdbcDate)
    });
    builder.append(XdbcTypeInfo {
        literal_prefix: Some("TIMESTAMP '".into()),
        literal_suffix: Some("'".into()),
        sql_data_type: XdbcDataType::XdbcDatetime,
        datetime_subcode: Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
        ..base("TIMESTAMP", XdbcDataType::XdbcTimestamp)
    });
    builder.build().map_err(flight_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_builders_build() {
        assert!(xdbc_types().is_ok());
        assert_eq!(primary_keys_schema().fields().len(), 6);
    }
}
