package dev.polyvisor.cli;

import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Random;

/** An HTTP server on the host serving {@code /blob}, seeded random bytes, for guests to fetch and check by sha256. */
final class BlobServer implements AutoCloseable {
    final byte[] blob;
    private final HttpServer http;

    private BlobServer(byte[] blob, HttpServer http) {
        this.blob = blob;
        this.http = http;
    }

    /** Serves {@code size} bytes from {@code seed} on {@code address}, on a free port. */
    static BlobServer start(InetAddress address, int size, long seed) throws IOException {
        byte[] blob = new byte[size];
        new Random(seed).nextBytes(blob);
        HttpServer http = HttpServer.create(new InetSocketAddress(address, 0), 0);
        http.createContext("/blob", ex -> {
            ex.sendResponseHeaders(200, blob.length);
            try (var o = ex.getResponseBody()) { o.write(blob); }
        });
        http.start();
        return new BlobServer(blob, http);
    }

    int port() { return http.getAddress().getPort(); }

    /** The blob's sha256 as sha256sum prints it. */
    String sha256() { return sha256(blob); }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e); // every JDK has SHA-256
        }
    }

    @Override
    public void close() { http.stop(0); }
}
