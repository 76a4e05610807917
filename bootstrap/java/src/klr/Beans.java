package klr;

import java.lang.annotation.Annotation;
import java.lang.reflect.AccessibleObject;
import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Member;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.Collections;
import java.util.Date;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Queue;
import java.util.Set;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Bean mapping as the official runtime's Jackson configuration does it: properties are public
 * getters ({@code getX}, {@code isX} for boolean) and public fields when writing, setters (any
 * visibility) and public fields when reading, named by the standard bean rules
 * ({@code getURL} is "URL", {@code isIsBase64Encoded} is "isBase64Encoded"), with Jackson's
 * {@code @JsonProperty} and {@code @JsonIgnore} honoured when the function ships them. Unknown
 * JSON properties are ignored. aws-lambda-java-events classes, whose JSON names the official
 * runtime maps with mix-ins ("Records", "eventSourceARN"), match names case-insensitively.
 */
final class Beans {
    private static final String EVENTS_PACKAGE = "com.amazonaws.services.lambda.runtime.events";
    private static final String JSON_PROPERTY = "com.fasterxml.jackson.annotation.JsonProperty";
    private static final String JSON_IGNORE = "com.fasterxml.jackson.annotation.JsonIgnore";

    private static final Map<Class<?>, List<Property>> READABLE = new ConcurrentHashMap<Class<?>, List<Property>>();
    private static final Map<Class<?>, Map<String, Property>> WRITABLE = new ConcurrentHashMap<Class<?>, Map<String, Property>>();

    private Beans() {
    }

    /** One bean property: its JSON name and the getter, setter or field behind it. */
    static final class Property {
        final String name;
        private final Member member;

        Property(String name, Member member) {
            this.name = name;
            this.member = member;
            try {
                ((AccessibleObject) member).setAccessible(true); // public members of classes that are not
            } catch (RuntimeException e) {
                // left as it is: a JDK class the module system keeps closed
            }
        }

        Object get(Object bean) {
            try {
                return member instanceof Method ? ((Method) member).invoke(bean) : ((Field) member).get(bean);
            } catch (InvocationTargetException e) {
                throw new IllegalArgumentException("Getter " + member.getName() + " of "
                        + bean.getClass().getName() + " threw " + e.getCause(), e.getCause());
            } catch (IllegalAccessException e) {
                throw new IllegalArgumentException(e.toString(), e);
            }
        }

        Type type() {
            return member instanceof Method ? ((Method) member).getGenericParameterTypes()[0]
                    : ((Field) member).getGenericType();
        }

        void set(Object bean, Object value) throws Exception {
            if (member instanceof Method) {
                ((Method) member).invoke(bean, value);
            } else {
                ((Field) member).set(bean, value);
            }
        }
    }

    /** The properties written for a bean, in Jackson's order: declared fields first, then the
     *  other getters. A getter wins over a public field of the same name. */
    static List<Property> readable(Class<?> type) {
        List<Property> properties = READABLE.get(type);
        if (properties == null) {
            Map<String, List<Member>> accessors = new LinkedHashMap<String, List<Member>>();
            for (Field field : fields(type)) {
                add(accessors, field.getName(), Modifier.isPublic(field.getModifiers()) ? field : null);
            }
            for (Method method : type.getMethods()) {
                String name = getterName(method);
                if (name != null) {
                    add(accessors, name, method);
                }
            }
            properties = new ArrayList<Property>();
            for (Map.Entry<String, List<Member>> entry : accessors.entrySet()) {
                Member chosen = null;
                for (Member member : entry.getValue()) {
                    if (chosen == null || member instanceof Method) {
                        chosen = member;
                    }
                }
                if (chosen != null && !ignored(entry.getValue())) {
                    properties.add(new Property(renamed(entry.getKey(), entry.getValue()), chosen));
                }
            }
            READABLE.put(type, properties);
        }
        return properties;
    }

    /** The properties read into a bean, by JSON name: setters win over public fields. */
    private static Map<String, Property> writable(Class<?> type) {
        Map<String, Property> properties = WRITABLE.get(type);
        if (properties == null) {
            Map<String, List<Member>> accessors = new LinkedHashMap<String, List<Member>>();
            for (Field field : fields(type)) {
                add(accessors, field.getName(), Modifier.isPublic(field.getModifiers()) ? field : null);
            }
            for (Class<?> c = type; c != null && c != Object.class; c = c.getSuperclass()) {
                for (Method method : c.getDeclaredMethods()) {
                    String name = setterName(method);
                    if (name != null) {
                        add(accessors, name, method);
                    }
                }
            }
            properties = new LinkedHashMap<String, Property>();
            for (Map.Entry<String, List<Member>> entry : accessors.entrySet()) {
                Member chosen = null;
                for (Member member : entry.getValue()) {
                    if (chosen == null) {
                        chosen = member; // the subclass's setter, or the field
                    } else if (chosen instanceof Field && member instanceof Method) {
                        chosen = member;
                    }
                }
                if (chosen != null && !ignored(entry.getValue())) {
                    String name = renamed(entry.getKey(), entry.getValue());
                    if (!properties.containsKey(name)) {
                        properties.put(name, new Property(name, chosen));
                    }
                }
            }
            WRITABLE.put(type, properties);
        }
        return properties;
    }

    private static void add(Map<String, List<Member>> accessors, String name, Member member) {
        List<Member> members = accessors.get(name);
        if (members == null) {
            members = new ArrayList<Member>();
            accessors.put(name, members);
        }
        if (member != null) {
            members.add(member);
        }
    }

    /** Instance fields of the class and its superclasses, superclass first. */
    private static List<Field> fields(Class<?> type) {
        List<Field> fields = new ArrayList<Field>();
        if (type.getSuperclass() != null && type.getSuperclass() != Object.class) {
            fields.addAll(fields(type.getSuperclass()));
        }
        for (Field field : type.getDeclaredFields()) {
            int modifiers = field.getModifiers();
            if (!Modifier.isStatic(modifiers) && !Modifier.isTransient(modifiers) && !field.isSynthetic()) {
                fields.add(field);
            }
        }
        return fields;
    }

    private static String getterName(Method method) {
        if (Modifier.isStatic(method.getModifiers()) || method.getParameterTypes().length != 0
                || method.getDeclaringClass() == Object.class || method.isBridge()) {
            return null;
        }
        String name = method.getName();
        if (name.startsWith("get") && name.length() > 3 && method.getReturnType() != void.class) {
            return decapitalize(name.substring(3));
        }
        if (name.startsWith("is") && name.length() > 2 && method.getReturnType() == boolean.class) {
            return decapitalize(name.substring(2));
        }
        return null;
    }

    private static String setterName(Method method) {
        String name = method.getName();
        if (Modifier.isStatic(method.getModifiers()) || method.getParameterTypes().length != 1
                || method.isBridge() || !name.startsWith("set") || name.length() <= 3) {
            return null;
        }
        return decapitalize(name.substring(3));
    }

    /** The standard bean rule (USE_STD_BEAN_NAMING): "URL" stays, "Name" becomes "name". */
    private static String decapitalize(String name) {
        if (name.length() > 1 && Character.isUpperCase(name.charAt(0)) && Character.isUpperCase(name.charAt(1))) {
            return name;
        }
        return Character.toLowerCase(name.charAt(0)) + name.substring(1);
    }

    private static boolean ignored(List<Member> members) {
        for (Member member : members) {
            Annotation ignore = annotation(member, JSON_IGNORE);
            if (ignore != null && Boolean.TRUE.equals(annotationValue(ignore))) {
                return true;
            }
        }
        return false;
    }

    private static String renamed(String name, List<Member> members) {
        for (Member member : members) {
            Annotation property = annotation(member, JSON_PROPERTY);
            Object value = property == null ? null : annotationValue(property);
            if (value instanceof String && !((String) value).isEmpty()) {
                return (String) value;
            }
        }
        return name;
    }

    private static Annotation annotation(Member member, String typeName) {
        for (Annotation annotation : ((AccessibleObject) member).getAnnotations()) {
            if (annotation.annotationType().getName().equals(typeName)) {
                return annotation;
            }
        }
        return null;
    }

    private static Object annotationValue(Annotation annotation) {
        try {
            return annotation.annotationType().getMethod("value").invoke(annotation);
        } catch (Exception e) {
            return null;
        }
    }

    // Reading: untyped JSON values (from Json.parse) into the handler's types.

    /** @throws IllegalArgumentException when the value cannot become that type */
    static Object convert(Object node, Type type) {
        Class<?> raw = Types.raw(type);
        if (raw == Object.class) {
            return node;
        }
        if (node == null) {
            return !raw.isPrimitive() ? null : raw == char.class ? (Object) '\0' : number(0, raw);
        }
        if (node instanceof List && ((List<?>) node).size() == 1 && !isArrayLike(raw)) {
            return convert(((List<?>) node).get(0), type); // UNWRAP_SINGLE_VALUE_ARRAYS
        }
        if (raw == String.class || raw == CharSequence.class) {
            return scalar(node, raw).toString();
        }
        if (raw.isPrimitive() || Number.class.isAssignableFrom(raw) || raw == Boolean.class || raw == Character.class) {
            return number(node, raw);
        }
        if (raw.isEnum()) {
            return enumValue(node, raw);
        }
        if (raw == byte[].class && node instanceof String) {
            return Base64.getMimeDecoder().decode((String) node);
        }
        if (raw == ByteBuffer.class && node instanceof String) {
            return ByteBuffer.wrap(Base64.getMimeDecoder().decode((String) node));
        }
        if (raw == Date.class && node instanceof Number) {
            return new Date(((Number) node).longValue());
        }
        if (raw == Optional.class) {
            return Optional.ofNullable(convert(node, Types.argument(type, 0)));
        }
        if (raw.isArray()) {
            List<?> elements = elements(node);
            Object array = Array.newInstance(raw.getComponentType(), elements.size());
            Type component = raw.getComponentType();
            for (int i = 0; i < elements.size(); i++) {
                Array.set(array, i, convert(elements.get(i), component));
            }
            return array;
        }
        if (Collection.class.isAssignableFrom(raw) || raw == Iterable.class) {
            @SuppressWarnings("unchecked")
            Collection<Object> collection = (Collection<Object>) newCollection(raw);
            Type element = elementType(type, Collection.class);
            for (Object item : elements(node)) {
                collection.add(convert(item, element));
            }
            return collection;
        }
        if (Map.class.isAssignableFrom(raw)) {
            if ("".equals(node)) {
                return null; // ACCEPT_EMPTY_STRING_AS_NULL_OBJECT
            }
            @SuppressWarnings("unchecked")
            Map<Object, Object> map = (Map<Object, Object>) newMap(raw);
            Map<TypeVariable<?>, Type> bindings = Types.bindings(type);
            TypeVariable<?>[] variables = Map.class.getTypeParameters();
            Type keyType = bindings.containsKey(variables[0]) ? bindings.get(variables[0]) : Object.class;
            Type valueType = bindings.containsKey(variables[1]) ? bindings.get(variables[1]) : Object.class;
            for (Map.Entry<String, Object> entry : object(node, raw).entrySet()) {
                map.put(convert(entry.getKey(), keyType), convert(entry.getValue(), valueType));
            }
            return map;
        }
        if (node instanceof String) {
            Object value = fromString((String) node, raw);
            if (value != null || "".equals(node)) {
                return value;
            }
        }
        return bean(node, type, raw);
    }

    private static boolean isArrayLike(Class<?> raw) {
        return raw.isArray() || Collection.class.isAssignableFrom(raw) || raw == Iterable.class;
    }

    private static Object bean(Object node, Type type, Class<?> raw) {
        Map<String, Object> fields = object(node, raw);
        Object bean = instantiate(raw);
        Map<String, Property> properties = writable(raw);
        Map<TypeVariable<?>, Type> bindings = Types.bindings(type);
        boolean anyCase = raw.getName().startsWith(EVENTS_PACKAGE);
        for (Map.Entry<String, Object> entry : fields.entrySet()) {
            Property property = properties.get(entry.getKey());
            if (property == null && anyCase) {
                property = properties.get(matchingName(properties, entry.getKey()));
            }
            if (property == null) {
                continue; // FAIL_ON_UNKNOWN_PROPERTIES is off
            }
            Object value = convert(entry.getValue(), Types.resolve(property.type(), bindings));
            try {
                property.set(bean, value);
            } catch (InvocationTargetException e) {
                throw new IllegalArgumentException("Setting " + property.name + " of " + raw.getName()
                        + " threw " + e.getCause(), e.getCause());
            } catch (Exception e) {
                throw new IllegalArgumentException("Cannot set " + property.name + " of " + raw.getName() + ": " + e, e);
            }
        }
        return bean;
    }

    private static String matchingName(Map<String, Property> properties, String name) {
        for (String candidate : properties.keySet()) {
            if (candidate.equalsIgnoreCase(name)) {
                return candidate;
            }
        }
        return null;
    }

    private static Object instantiate(Class<?> raw) {
        if (raw.isInterface() || Modifier.isAbstract(raw.getModifiers())) {
            throw new IllegalArgumentException("Cannot construct instance of `" + raw.getName()
                    + "`: abstract types need to be mapped to concrete types");
        }
        try {
            Constructor<?> constructor = raw.getDeclaredConstructor();
            constructor.setAccessible(true);
            return constructor.newInstance();
        } catch (NoSuchMethodException e) {
            throw new IllegalArgumentException("Cannot construct instance of `" + raw.getName()
                    + "` (no Creators, like default constructor, exist)");
        } catch (InvocationTargetException e) {
            throw new IllegalArgumentException("Constructor of " + raw.getName() + " threw " + e.getCause(), e.getCause());
        } catch (Exception e) {
            throw new IllegalArgumentException("Cannot construct instance of `" + raw.getName() + "`: " + e, e);
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> object(Object node, Class<?> raw) {
        if (node instanceof Map) {
            return (Map<String, Object>) node;
        }
        throw cannot(raw, node);
    }

    private static List<?> elements(Object node) {
        return node instanceof List ? (List<?>) node : Collections.singletonList(node); // ACCEPT_SINGLE_VALUE_AS_ARRAY
    }

    private static Type elementType(Type type, Class<?> generic) {
        Type element = Types.bindings(type).get(generic.getTypeParameters()[0]);
        if (element == null && Types.raw(type) == Iterable.class) {
            element = Types.argument(type, 0);
        }
        return element == null ? Object.class : element;
    }

    private static Object newCollection(Class<?> raw) {
        if (!raw.isInterface() && !Modifier.isAbstract(raw.getModifiers())) {
            return instantiate(raw);
        }
        if (SortedSet.class.isAssignableFrom(raw)) {
            return new TreeSet<Object>();
        }
        if (Set.class.isAssignableFrom(raw)) {
            return new HashSet<Object>();
        }
        if (Queue.class.isAssignableFrom(raw)) {
            return new ArrayDeque<Object>();
        }
        return new ArrayList<Object>();
    }

    private static Object newMap(Class<?> raw) {
        if (!raw.isInterface() && !Modifier.isAbstract(raw.getModifiers())) {
            return instantiate(raw);
        }
        if (SortedMap.class.isAssignableFrom(raw)) {
            return new TreeMap<Object, Object>();
        }
        if (ConcurrentHashMap.class.isAssignableFrom(raw) || raw.getName().startsWith("java.util.concurrent.")) {
            return new ConcurrentHashMap<Object, Object>();
        }
        return new LinkedHashMap<Object, Object>();
    }

    private static Object scalar(Object node, Class<?> raw) {
        if (node instanceof Map || node instanceof List) {
            throw cannot(raw, node);
        }
        return node;
    }

    /** Numbers, booleans and characters, with Jackson's coercions: "5" reads as 5, 1.9 as the
     *  int 1, 0 and 1 as booleans. */
    private static Object number(Object node, Class<?> raw) {
        Object value = scalar(node, raw);
        Class<?> boxed = boxed(raw);
        if (boxed == Boolean.class) {
            if (value instanceof Boolean) {
                return value;
            }
            if (value instanceof Number) {
                return ((Number) value).intValue() != 0;
            }
            String text = value.toString().trim();
            if (text.equalsIgnoreCase("true") || text.equalsIgnoreCase("false")) {
                return Boolean.valueOf(text);
            }
            throw cannot(raw, node);
        }
        if (boxed == Character.class) {
            String text = value.toString();
            if (text.length() == 1) {
                return text.charAt(0);
            }
            throw cannot(raw, node);
        }
        if (value instanceof Boolean) {
            throw cannot(raw, node);
        }
        BigDecimal decimal;
        try {
            decimal = value instanceof BigDecimal ? (BigDecimal) value : new BigDecimal(value.toString().trim());
        } catch (NumberFormatException e) {
            if (value instanceof Double) { // NaN, Infinity
                return boxed == Float.class ? (Object) ((Double) value).floatValue() : value;
            }
            throw cannot(raw, node);
        }
        if (boxed == Double.class || boxed == Number.class) {
            return value instanceof Number && boxed == Number.class ? value : decimal.doubleValue();
        }
        if (boxed == Float.class) {
            return decimal.floatValue();
        }
        if (boxed == BigDecimal.class) {
            return decimal;
        }
        BigInteger integer = decimal.toBigInteger();
        if (boxed == BigInteger.class) {
            return integer;
        }
        int bits = boxed == Long.class ? 64 : boxed == Integer.class ? 32 : boxed == Short.class ? 16 : 8;
        if (integer.bitLength() >= bits) {
            throw new IllegalArgumentException("Numeric value (" + value + ") out of range of " + raw.getName());
        }
        long whole = integer.longValue();
        if (boxed == Long.class) {
            return whole;
        }
        if (boxed == Integer.class) {
            return (int) whole;
        }
        if (boxed == Short.class) {
            return (short) whole;
        }
        if (boxed == Byte.class) {
            return (byte) whole;
        }
        throw cannot(raw, node);
    }

    private static Class<?> boxed(Class<?> raw) {
        if (!raw.isPrimitive()) {
            return raw;
        }
        if (raw == int.class) {
            return Integer.class;
        }
        if (raw == long.class) {
            return Long.class;
        }
        if (raw == double.class) {
            return Double.class;
        }
        if (raw == boolean.class) {
            return Boolean.class;
        }
        if (raw == float.class) {
            return Float.class;
        }
        if (raw == short.class) {
            return Short.class;
        }
        if (raw == byte.class) {
            return Byte.class;
        }
        return Character.class;
    }

    private static Object enumValue(Object node, Class<?> raw) {
        Object[] constants = raw.getEnumConstants();
        Object value = scalar(node, raw);
        if (value instanceof Integer) {
            int ordinal = (Integer) value;
            return ordinal >= 0 && ordinal < constants.length ? constants[ordinal] : null;
        }
        for (Object constant : constants) {
            if (((Enum<?>) constant).name().equals(value.toString())) {
                return constant;
            }
        }
        return null; // READ_UNKNOWN_ENUM_VALUES_AS_NULL
    }

    /** Types made from text (UUID, URI, java.time, Joda's DateTime in aws-lambda-java-events):
     *  a static fromString/valueOf/parse method, or a constructor taking a String or Object.
     *  Null when the type has none; "" reads as null, as Jackson does. */
    private static Object fromString(String text, Class<?> raw) {
        if (text.isEmpty()) {
            return null;
        }
        for (String name : new String[] {"fromString", "valueOf", "parse"}) {
            for (Class<?> parameter : new Class<?>[] {String.class, CharSequence.class}) {
                try {
                    Method factory = raw.getMethod(name, parameter);
                    if (Modifier.isStatic(factory.getModifiers()) && raw.isAssignableFrom(factory.getReturnType())) {
                        return factory.invoke(null, text);
                    }
                } catch (NoSuchMethodException e) {
                    // try the next form
                } catch (InvocationTargetException e) {
                    throw new IllegalArgumentException("Cannot read " + raw.getName() + " from \"" + text + "\": "
                            + e.getCause(), e.getCause());
                } catch (IllegalAccessException e) {
                    // try the next form
                }
            }
        }
        for (Class<?> parameter : new Class<?>[] {String.class, Object.class}) {
            try {
                return raw.getConstructor(parameter).newInstance(text);
            } catch (NoSuchMethodException e) {
                // try the next form
            } catch (InvocationTargetException e) {
                throw new IllegalArgumentException("Cannot read " + raw.getName() + " from \"" + text + "\": "
                        + e.getCause(), e.getCause());
            } catch (Exception e) {
                // try the next form
            }
        }
        return null;
    }

    private static IllegalArgumentException cannot(Class<?> raw, Object node) {
        String kind = node instanceof Map ? "Object value" : node instanceof List ? "Array value"
                : node instanceof String ? "String value (\"" + node + "\")" : node.getClass().getSimpleName().toLowerCase(Locale.ROOT) + " value";
        return new IllegalArgumentException("Cannot deserialize value of type `" + raw.getName() + "` from " + kind);
    }
}
