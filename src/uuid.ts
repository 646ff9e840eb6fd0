// The one UUID pattern: ids in paths, cursors and CLI arguments are checked against it before they
// reach PostgreSQL, whose uuid cast would otherwise fail as a 500 rather than a 404 or 400.
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
