/**
 * The {@code polyvisor} command line (picocli): {@code run}, {@code abi}, and the error reporting
 * that turns bad input into one-line messages with a non-zero exit status. May import anything.
 */
package dev.polyvisor.cli;
