// One error type for the launch-measurement calculator. Messages name the
// structure that was wrong, never file contents.
export type MeasureErrorCode =
  | 'ovmf_too_small'
  | 'ovmf_not_page_aligned'
  | 'ovmf_footer_missing'
  | 'ovmf_table_malformed'
  | 'ovmf_metadata_malformed'
  | 'ovmf_section_unknown'
  | 'ovmf_no_kernel_hashes'
  | 'ovmf_no_reset_block'
  | 'invalid_argument';

export class MeasureError extends Error {
  readonly code: MeasureErrorCode;
  constructor(code: MeasureErrorCode, message: string) {
    super(message);
    this.name = 'MeasureError';
    this.code = code;
  }
}
