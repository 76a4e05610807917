package klr;

import java.io.File;
import java.lang.reflect.Array;
import java.math.BigInteger;
import java.net.URI;
import java.net.URL;
import java.nio.charset.Charset;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.Period;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.time.temporal.TemporalAccessor;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Calendar;
import java.util.Collections;
import java.util.Currency;
import java.util.Date;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TimeZone;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;

/**
 * JSON text to and from Java values, the way the official runtime's Jackson configuration does it
 * for what Lambda functions take and return. Parsing gives untyped values (LinkedHashMap,
 * ArrayList, String, Integer/Long/BigInteger, Double, Boolean, null) that {@link Beans} turns
 * into the handler's types. Writing takes maps, collections, arrays, scalars, dates (java.util
 * and java.time), Optional, enums and beans; bean properties that are null are left out
 * (Include.NON_NULL), map entries are not.
 */
final class Json {
    private final String text;
    private int at;

    private Json(String text) {
        this.text = text;
    }

    /** @throws IllegalArgumentException for text that is not one JSON value */
    static Object parse(String text) {
        Json parser = new Json(text);
        parser.skipSpace();
        if (parser.at == text.length()) {
            throw new IllegalArgumentException("No content to map due to end-of-input");
        }
        Object value = parser.value();
        parser.skipSpace();
        if (parser.at != text.length()) {
            throw parser.unexpected();
        }
        return value;
    }

    private Object value() {
        char c = peek();
        switch (c) {
            case '{':
                return object();
            case '[':
                return array();
            case '"':
                return string();
            case 't':
                return literal("true", Boolean.TRUE);
            case 'f':
                return literal("false", Boolean.FALSE);
            case 'n':
                return literal("null", null);
            default:
                if (c == '-' || (c >= '0' && c <= '9')) {
                    return number();
                }
                throw unexpected();
        }
    }

    private Map<String, Object> object() {
        Map<String, Object> map = new LinkedHashMap<String, Object>();
        at++;
        skipSpace();
        if (peek() == '}') {
            at++;
            return map;
        }
        while (true) {
            skipSpace();
            if (peek() != '"') {
                throw unexpected();
            }
            String key = string();
            skipSpace();
            expect(':');
            skipSpace();
            map.put(key, value());
            skipSpace();
            if (peek() == ',') {
                at++;
            } else {
                expect('}');
                return map;
            }
        }
    }

    private List<Object> array() {
        List<Object> list = new ArrayList<Object>();
        at++;
        skipSpace();
        if (peek() == ']') {
            at++;
            return list;
        }
        while (true) {
            skipSpace();
            list.add(value());
            skipSpace();
            if (peek() == ',') {
                at++;
            } else {
                expect(']');
                return list;
            }
        }
    }

    private String string() {
        at++; // the opening quote
        StringBuilder out = null;
        int start = at;
        while (true) {
            if (at >= text.length()) {
                throw new IllegalArgumentException("Unexpected end-of-input in a string");
            }
            char c = text.charAt(at);
            if (c == '"') {
                String tail = text.substring(start, at++);
                return out == null ? tail : out.append(tail).toString();
            }
            if (c != '\\') {
                at++;
                continue;
            }
            if (out == null) {
                out = new StringBuilder();
            }
            out.append(text, start, at);
            at++;
            char escaped = peek();
            at++;
            switch (escaped) {
                case 'b': out.append('\b'); break;
                case 'f': out.append('\f'); break;
                case 'n': out.append('\n'); break;
                case 'r': out.append('\r'); break;
                case 't': out.append('\t'); break;
                case 'u':
                    if (at + 4 > text.length()) {
                        throw new IllegalArgumentException("Unexpected end-of-input in a \\u escape");
                    }
                    try {
                        out.append((char) Integer.parseInt(text.substring(at, at + 4), 16));
                    } catch (NumberFormatException e) {
                        throw new IllegalArgumentException("Invalid \\u escape at offset " + at);
                    }
                    at += 4;
                    break;
                default: out.append(escaped); // \" \\ \/ and, leniently, any other character
            }
            start = at;
        }
    }

    private Object literal(String word, Object value) {
        if (!text.startsWith(word, at)) {
            throw unexpected();
        }
        at += word.length();
        return value;
    }

    private Object number() {
        int start = at;
        boolean integral = true;
        if (peekOr(' ') == '-') {
            at++;
        }
        while (at < text.length()) {
            char c = text.charAt(at);
            if (c == '.' || c == 'e' || c == 'E' || ((c == '+' || c == '-') && !integral)) {
                integral = false;
            } else if (c < '0' || c > '9') {
                break;
            }
            at++;
        }
        String digits = text.substring(start, at);
        try {
            if (!integral) {
                return Double.valueOf(digits);
            }
            BigInteger value = new BigInteger(digits);
            if (value.bitLength() < 32) {
                return value.intValue();
            }
            return value.bitLength() < 64 ? (Object) value.longValue() : value;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("Invalid number '" + digits + "' at offset " + start);
        }
    }

    private void skipSpace() {
        while (at < text.length()) {
            char c = text.charAt(at);
            if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
                return;
            }
            at++;
        }
    }

    private char peek() {
        if (at >= text.length()) {
            throw new IllegalArgumentException("Unexpected end-of-input at offset " + at);
        }
        return text.charAt(at);
    }

    private char peekOr(char fallback) {
        return at < text.length() ? text.charAt(at) : fallback;
    }

    private void expect(char c) {
        if (peek() != c) {
            throw unexpected();
        }
        at++;
    }

    private IllegalArgumentException unexpected() {
        if (at >= text.length()) {
            return new IllegalArgumentException("Unexpected end-of-input at offset " + at);
        }
        return new IllegalArgumentException("Unexpected character '" + text.charAt(at) + "' at offset " + at);
    }

    // Writing

    /** @throws IllegalArgumentException for a value that has no JSON form (a cycle, a null map key) */
    static String write(Object value) {
        StringBuilder out = new StringBuilder();
        writeValue(value, out, Collections.newSetFromMap(new IdentityHashMap<Object, Boolean>()));
        return out.toString();
    }

    private static void writeValue(Object value, StringBuilder out, Set<Object> path) {
        if (value == null) {
            out.append("null");
        } else if (value instanceof CharSequence || value instanceof Character) {
            writeString(value.toString(), out);
        } else if (value instanceof Boolean || value instanceof AtomicBoolean) {
            out.append(value.toString());
        } else if (value instanceof Double || value instanceof Float) {
            double number = ((Number) value).doubleValue();
            // Jackson writes NaN and the infinities as strings.
            boolean finite = !Double.isNaN(number) && !Double.isInfinite(number);
            out.append(finite ? value.toString() : '"' + value.toString() + '"');
        } else if (value instanceof Number) {
            out.append(value.toString()); // BigDecimal too: Jackson does not write it plain
        } else if (value instanceof Enum) {
            writeString(((Enum<?>) value).name(), out);
        } else if (value instanceof Optional) {
            writeValue(((Optional<?>) value).orElse(null), out, path);
        } else if (value instanceof Date) {
            out.append(((Date) value).getTime()); // Jackson's default: epoch milliseconds
        } else if (value instanceof Calendar) {
            out.append(((Calendar) value).getTimeInMillis());
        } else if (value instanceof byte[]) {
            writeString(Base64.getEncoder().encodeToString((byte[]) value), out);
        } else if (value instanceof char[]) {
            writeString(new String((char[]) value), out);
        } else if (value instanceof UUID || value instanceof URI || value instanceof URL || value instanceof Locale
                || value instanceof Pattern || value instanceof Currency || value instanceof Charset
                || value instanceof ZoneId || value instanceof Period) {
            writeString(value.toString(), out);
        } else if (value instanceof File) {
            writeString(((File) value).getAbsolutePath(), out);
        } else if (value instanceof Class) {
            writeString(((Class<?>) value).getName(), out);
        } else if (value instanceof TimeZone) {
            writeString(((TimeZone) value).getID(), out);
        } else if (!writeTime(value, out)) {
            if (!path.add(value)) {
                throw new IllegalArgumentException("Direct self-reference leading to cycle (" + value.getClass().getName() + ")");
            }
            if (value instanceof Map) {
                writeMap((Map<?, ?>) value, out, path);
            } else if (value instanceof Iterable) {
                writeElements(((Iterable<?>) value).iterator(), out, path);
            } else if (value.getClass().isArray()) {
                writeArray(value, out, path);
            } else {
                writeBean(value, out, path);
            }
            path.remove(value);
        }
    }

    /** java.time values as Jackson's JavaTimeModule writes them by default: instants and durations
     *  as decimal seconds, local dates and times as arrays. False for other values. */
    private static boolean writeTime(Object value, StringBuilder out) {
        if (value instanceof Instant || value instanceof ZonedDateTime || value instanceof OffsetDateTime) {
            Instant instant = value instanceof Instant ? (Instant) value : Instant.from((TemporalAccessor) value);
            out.append(instant.getEpochSecond()).append('.').append(String.format("%09d", instant.getNano()));
        } else if (value instanceof Duration) {
            Duration duration = (Duration) value;
            out.append(duration.getSeconds()).append('.').append(String.format("%09d", duration.getNano()));
        } else if (value instanceof LocalDate) {
            LocalDate date = (LocalDate) value;
            out.append('[').append(date.getYear()).append(',').append(date.getMonthValue())
                    .append(',').append(date.getDayOfMonth()).append(']');
        } else if (value instanceof LocalDateTime || value instanceof LocalTime) {
            LocalTime time = value instanceof LocalTime ? (LocalTime) value : ((LocalDateTime) value).toLocalTime();
            out.append('[');
            if (value instanceof LocalDateTime) {
                LocalDate date = ((LocalDateTime) value).toLocalDate();
                out.append(date.getYear()).append(',').append(date.getMonthValue())
                        .append(',').append(date.getDayOfMonth()).append(',');
            }
            out.append(time.getHour()).append(',').append(time.getMinute());
            if (time.getSecond() > 0 || time.getNano() > 0) {
                out.append(',').append(time.getSecond());
                if (time.getNano() > 0) {
                    out.append(',').append(time.getNano());
                }
            }
            out.append(']');
        } else {
            return false;
        }
        return true;
    }

    private static void writeMap(Map<?, ?> map, StringBuilder out, Set<Object> path) {
        out.append('{');
        boolean first = true;
        for (Map.Entry<?, ?> entry : map.entrySet()) {
            Object key = entry.getKey();
            if (key == null) {
                throw new IllegalArgumentException("Null key for a Map not allowed in JSON");
            }
            if (!first) {
                out.append(',');
            }
            first = false;
            writeString(key instanceof Enum ? ((Enum<?>) key).name() : key.toString(), out);
            out.append(':');
            writeValue(entry.getValue(), out, path);
        }
        out.append('}');
    }

    private static void writeElements(Iterator<?> elements, StringBuilder out, Set<Object> path) {
        out.append('[');
        for (boolean first = true; elements.hasNext(); first = false) {
            if (!first) {
                out.append(',');
            }
            writeValue(elements.next(), out, path);
        }
        out.append(']');
    }

    private static void writeArray(Object array, StringBuilder out, Set<Object> path) {
        out.append('[');
        for (int i = 0, n = Array.getLength(array); i < n; i++) {
            if (i > 0) {
                out.append(',');
            }
            writeValue(Array.get(array, i), out, path);
        }
        out.append(']');
    }

    private static void writeBean(Object bean, StringBuilder out, Set<Object> path) {
        out.append('{');
        boolean first = true;
        for (Beans.Property property : Beans.readable(bean.getClass())) {
            Object value = property.get(bean);
            if (value == null) {
                continue;
            }
            if (!first) {
                out.append(',');
            }
            first = false;
            writeString(property.name, out);
            out.append(':');
            writeValue(value, out, path);
        }
        out.append('}');
    }

    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private static void writeString(String s, StringBuilder out) {
        out.append('"');
        int start = 0;
        for (int i = 0, n = s.length(); i < n; i++) {
            char c = s.charAt(i);
            if (c >= 0x20 && c != '"' && c != '\\') {
                continue;
            }
            out.append(s, start, i);
            start = i + 1;
            switch (c) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                case '\b': out.append("\\b"); break;
                case '\f': out.append("\\f"); break;
                default: out.append("\\u00").append(HEX[c >> 4]).append(HEX[c & 0xF]);
            }
        }
        out.append(s, start, s.length()).append('"');
    }
}
