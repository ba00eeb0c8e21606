package dev.polyvisor.matrix;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Optional;

/** matrix.json and the cached cells, with Jackson (schema: docs/MATRIX.md). */
public final class MatrixJson {
    private MatrixJson() {}

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    public static byte[] write(MatrixResult m) {
        try {
            return (JSON.writeValueAsString(m) + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write the matrix as JSON: " + e.getMessage(), e);
        }
    }

    public static MatrixResult read(Path file) throws IOException {
        MatrixResult m;
        try {
            m = JSON.readValue(file.toFile(), MatrixResult.class);
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new IOException(file + " is not a matrix.json: " + e.getOriginalMessage());
        }
        if (m.schema() == null || !m.schema().startsWith("polyvisor-matrix/"))
            throw new IOException(file + " is not a matrix.json (schema " + m.schema() + ")");
        return m;
    }

    static byte[] writeCell(CellResult c) {
        try {
            return JSON.writeValueAsBytes(c);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write a cell as JSON: " + e.getMessage(), e);
        }
    }

    /** A cached cell, or empty when the file is missing or unreadable (then the cell is run again). */
    static Optional<CellResult> readCell(Path file) {
        try {
            return Optional.of(JSON.readValue(Files.readAllBytes(file), CellResult.class));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** The matrix as a JSON tree without its host-side fields (the top-level and every cell's {@code host}): what must repeat. */
    public static JsonNode withoutHost(MatrixResult m) {
        ObjectNode root = JSON.valueToTree(m);
        root.remove("host");
        for (JsonNode c : root.withArray("cells")) ((ObjectNode) c).remove("host");
        return root;
    }

    /** {@link #withoutHost} as text, for a readable comparison. */
    public static String withoutHostText(MatrixResult m) {
        try {
            return JSON.writeValueAsString(withoutHost(m));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
