// JSON columns. Prisma reads them as JsonValue and takes InputJsonValue, an object with an index
// signature that a declared interface never has. This package writes them from typed records
// only, so writing is a widening and reading one back as its record's field type is the one
// place that trusts a column: both happen here, not as casts at each field.
import { Prisma } from '../../generated/client';

/** A record's JSON-serializable field as a column value. */
export function jsonInput(v: object): Prisma.InputJsonValue {
  return v as Prisma.InputJsonValue;
}

/** As jsonInput; SQL NULL for null or undefined. */
export function jsonOrNull(v: object | null | undefined): Prisma.InputJsonValue | typeof Prisma.DbNull {
  return v === null || v === undefined ? Prisma.DbNull : jsonInput(v);
}

/** A column read back as the record field it was written from. */
export function jsonField<T>(v: Prisma.JsonValue): T {
  return v as T;
}
