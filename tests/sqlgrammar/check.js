// Parses SQL statements with MySQL's own grammar (MySQL Workbench's, packaged as
// ts-mysql-parser) at a given server version. stdin: {"version": "8.4.0", "statements":
// [{"where": "...", "sql": "..."}]}; stdout: the statements it rejects, as JSON
// [{"where": "...", "error": "..."}]. Used by tests/deploy/test_sql_grammar.py.
"use strict";
const Parser = require("ts-mysql-parser").default;

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const { version, statements } = JSON.parse(input);
  const parser = new Parser({ version });
  const rejected = [];
  for (const { where, sql } of statements) {
    const result = parser.parse(sql);
    const error = result.lexerError || result.parserError;
    if (error) {
      rejected.push({ where, error: error.message });
    }
  }
  process.stdout.write(JSON.stringify(rejected));
});
