-- Advances the watermark (newest event time seen).
UPDATE pipeline_state SET watermark = $watermark WHERE id = 1
