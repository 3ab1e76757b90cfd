// Package model holds Orchard's domain entities and enums.
//
// The structs are mapped by GORM onto the tables that the versioned migrations in package db
// create (never by AutoMigrate), and the GraphQL types of package graph bind to them directly,
// so a field added here must also be added to both engines' migrations and, where it is public,
// to the schema. A test in package db fails when models and migrated schemas disagree.
//
// Identifiers are 64-bit integers assigned by the database. Nothing relies on their order
// matching insertion order (distributed MySQL-compatible engines do not promise it); they are
// only a stable total order for keyset pagination.
//
// This package imports nothing of Orchard's own.
package model
