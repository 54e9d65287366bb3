// Shared per-file setup. The sentinel leak scanner hooks in here (see test/support/sentinel.ts).
export {};
