-- chit_require aborts the statement (and so the whole implicit transaction
-- of a pipelined batch) when a condition does not hold. The one-round-trip
-- issuance path sends every check and write together and relies on it to
-- leave nothing behind when any check fails.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION chit_require(ok boolean, what text) RETURNS boolean
  LANGUAGE plpgsql AS $$
BEGIN
  IF ok IS NOT TRUE THEN
    RAISE EXCEPTION USING ERRCODE = 'CH001', MESSAGE = what;
  END IF;
  RETURN true;
END
$$;
-- +goose StatementEnd
GRANT EXECUTE ON FUNCTION chit_require(boolean, text) TO chit_app;

-- +goose Down
DROP FUNCTION chit_require(boolean, text);
