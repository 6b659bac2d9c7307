// The SQLite DB handler lands with its own issue; the library exists so parley::parley links.
namespace parley::db {
int sqlite_db_handler_placeholder = 0;
}
