package training;

import java.util.List;
import java.util.Map;

/** The function the image build runs so that the JVM records the classes a start-up and the
 *  first invocations load (bootstrap/java/cds/train.py): a bean event, a bean result, an error. */
public class Echo {
    public Item handle(Item item) {
        if (item.getName() == null) {
            throw new IllegalArgumentException("an item needs a name");
        }
        return item;
    }

    /** A bean with the usual kinds of properties. */
    public static class Item {
        private String name;
        private List<Integer> values;
        private Map<String, Object> extra;
        private boolean flag;

        public String getName() {
            return name;
        }

        public void setName(String name) {
            this.name = name;
        }

        public List<Integer> getValues() {
            return values;
        }

        public void setValues(List<Integer> values) {
            this.values = values;
        }

        public Map<String, Object> getExtra() {
            return extra;
        }

        public void setExtra(Map<String, Object> extra) {
            this.extra = extra;
        }

        public boolean isFlag() {
            return flag;
        }

        public void setFlag(boolean flag) {
            this.flag = flag;
        }
    }
}
