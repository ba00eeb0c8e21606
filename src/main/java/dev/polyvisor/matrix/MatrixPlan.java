package dev.polyvisor.matrix;

import dev.polyvisor.personality.AbiCatalog;
import dev.polyvisor.personality.core.AbiElement;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Which cells a matrix runs, in order: the reference columns {@code bare} and {@code unknown}, then for
 * each personality its baseline and one cell per element switched off. Each cell knows the cell it is
 * compared with ({@link #reference}): an element-off cell its personality's baseline, a baseline and the
 * {@code unknown} column {@code bare}, {@code bare} none.
 */
public record MatrixPlan(List<CellSpec> cells) {
    /** Changes whenever what a cell records or how it is run changes, so cached cells are not reused. */
    public static final int VERSION = 3; // 3: x86_init read at free_initmem(); shared-structure update counters
    /** The personalities of a default matrix (every one with ABI elements). */
    public static final List<String> DEFAULT_PERSONALITIES = List.of("kvm", "hyperv", "xen", "vmware");
    public static final List<String> REFERENCES = List.of("bare", "unknown");

    public MatrixPlan { cells = List.copyOf(cells); }

    /**
     * The plan for {@code personalities} (specs; empty: {@link #DEFAULT_PERSONALITIES}, or the owners of
     * {@code elements} when those are given) with one element-off cell per element, or only for
     * {@code elements} when not empty. Unknown names give a one-line {@link IllegalArgumentException}
     * naming the valid choices.
     */
    public static MatrixPlan of(List<String> personalities, List<String> elements, boolean references) {
        List<String> specs = new ArrayList<>(personalities.stream().map(String::trim).filter(s -> !s.isEmpty()).toList());
        List<String> only = elements.stream().map(String::trim).filter(s -> !s.isEmpty()).toList();
        if (specs.isEmpty()) {
            if (only.isEmpty()) specs.addAll(DEFAULT_PERSONALITIES);
            else for (String id : only) {
                String owner = owner(id);
                if (!specs.contains(owner)) specs.add(owner);
            }
        }
        Map<String, List<String>> elementsOf = new LinkedHashMap<>();
        for (String spec : specs) {
            if (elementsOf.containsKey(spec)) throw new IllegalArgumentException("personality '" + spec + "' is named twice");
            List<String> ids = new ArrayList<>();
            for (String name : spec.split("\\+", -1)) {
                if (!AbiCatalog.names().contains(name))
                    throw new IllegalArgumentException("unknown personality '" + name + "' (valid: " + String.join(", ", AbiCatalog.names())
                            + ", or a stack such as hyperv+kvm)");
                AbiCatalog.contract(name).elements().stream().map(AbiElement::id).forEach(ids::add);
            }
            if (spec.contains("+bare") || spec.startsWith("bare+"))
                throw new IllegalArgumentException("'bare' cannot be stacked with other personalities");
            elementsOf.put(spec, ids);
        }
        Set<String> all = new LinkedHashSet<>();
        elementsOf.values().forEach(all::addAll);
        for (String id : only)
            if (!all.contains(id))
                throw new IllegalArgumentException("unknown ABI element '" + id + "' for " + String.join(", ", specs)
                        + " (valid: " + String.join(", ", all) + ")");
        List<CellSpec> cells = new ArrayList<>();
        if (references) for (String r : REFERENCES) cells.add(CellSpec.reference(r));
        for (var e : elementsOf.entrySet()) {
            String spec = e.getKey();
            if (REFERENCES.contains(spec)) {
                if (!references) cells.add(CellSpec.reference(spec));
                continue;
            }
            cells.add(CellSpec.baseline(spec));
            for (String id : e.getValue()) if (only.isEmpty() || only.contains(id)) cells.add(CellSpec.without(spec, id));
        }
        return new MatrixPlan(cells);
    }

    private static String owner(String id) {
        int dot = id.indexOf('.');
        String owner = dot < 0 ? id : id.substring(0, dot);
        if (AbiCatalog.element(id).isEmpty()) {
            List<String> valid = new ArrayList<>();
            for (String p : AbiCatalog.names()) AbiCatalog.contract(p).elements().forEach(el -> valid.add(el.id()));
            throw new IllegalArgumentException("unknown ABI element '" + id + "' (valid: " + String.join(", ", valid) + ")");
        }
        return owner;
    }

    /** The id of the cell {@code cell} is compared with, if the plan has it. */
    public Optional<String> reference(CellSpec cell) { return referenceOf(cell, cells.stream().map(CellSpec::id).toList()); }

    /** As {@link #reference(CellSpec)}, among the cell ids {@code present}. */
    public static Optional<String> referenceOf(CellSpec cell, List<String> present) {
        String ref = switch (cell.role()) {
            case REFERENCE -> cell.personality().equals("bare") ? null : "bare";
            case BASELINE -> "bare";
            case ELEMENT_OFF -> cell.personality();
        };
        return ref != null && present.contains(ref) ? Optional.of(ref) : Optional.empty();
    }
}
