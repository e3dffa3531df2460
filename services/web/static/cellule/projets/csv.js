// The project table as a CSV file, built in the browser from what the detection API
// answered (it has no CSV endpoint for projects). For French Excel: fields separated by
// ";" (the comma is the decimal separator there), UTF-8 with a byte-order mark (without
// it Excel reads the accents as Latin-1), CRLF line ends, every field quoted when needed.

const BOM = "\uFEFF";

function cell(value) {
  if (value === null || value === undefined) return "";
  const text = String(value);
  // A leading =, +, - or @ would be read as a formula by a spreadsheet: neutralised.
  const safe = /^[=+\-@]/.test(text) && !/^-?\d/.test(text) ? `'${text}` : text;
  return /[";\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function toCsv(header, rows) {
  const lines = [header, ...rows].map((row) => row.map(cell).join(";"));
  return BOM + lines.join("\r\n") + "\r\n";
}

export function saveCsv(filename, text) {
  const blob = new Blob([text], { type: "text/csv;charset=utf-8" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
